"""Pod logs, Leases with optimistic concurrency, access reviews and injected faults."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
import urllib3
from kubernetes import client

from k8s.sim import EmbeddedCluster
from tests.k8s_sim.conftest import a_pod, new_watch, wait_for_phase


def test_logs_of_a_finished_pod_with_tail_and_container(core: Any) -> None:
    pod = a_pod("job").on("h100-0").runs_for(2).containers("main", "sidecar").build()
    core.create_namespaced_pod("default", pod)
    wait_for_phase(core, "job", "Succeeded")

    full = core.read_namespaced_pod_log("job", "default", container="main")
    tail = core.read_namespaced_pod_log("job", "default", container="main", tail_lines=1)

    assert full.splitlines()[0].endswith("sim: container started on node h100-0")
    assert tail.splitlines() == [full.splitlines()[-1]]
    assert tail.endswith("sim: container exited with code 0\n")


def test_log_of_unknown_container_is_bad_request(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("job").on("h100-0").build())
    wait_for_phase(core, "job", "Running")

    with pytest.raises(client.ApiException) as raised:
        core.read_namespaced_pod_log("job", "default", container="nope")

    assert raised.value.status == 400


def test_follow_streams_until_the_container_exits(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("job").on("h100-0").runs_for(30).build())
    wait_for_phase(core, "job", "Running")

    lines = list(new_watch().stream(core.read_namespaced_pod_log, "job", "default"))

    assert len(lines) == 5
    assert lines[-1].endswith("exited with code 0")
    assert wait_for_phase(core, "job", "Succeeded")


def a_lease(name: str, holder: str) -> client.V1Lease:
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=15,
            renew_time=dt.datetime.now(dt.UTC),
        ),
    )


def test_lease_update_with_stale_resource_version_conflicts(api_client: Any) -> None:
    leases: Any = client.CoordinationV1Api(api_client)
    created = leases.create_namespaced_lease("kube-system", a_lease("yushan", "a"))
    created.spec.holder_identity = "b"
    renewed = leases.replace_namespaced_lease("yushan", "kube-system", created)

    created.spec.holder_identity = "c"
    with pytest.raises(client.ApiException) as raised:
        leases.replace_namespaced_lease("yushan", "kube-system", created)

    assert raised.value.status == 409
    current = leases.read_namespaced_lease("yushan", "kube-system")
    assert current.spec.holder_identity == "b"
    assert current.metadata.resource_version == renewed.metadata.resource_version
    assert current.spec.renew_time is not None
    assert [lease.metadata.name for lease in leases.list_namespaced_lease("kube-system").items] == [
        "yushan"
    ]
    leases.delete_namespaced_lease("yushan", "kube-system")
    assert leases.list_namespaced_lease("kube-system").items == []
    node_leases = leases.list_lease_for_all_namespaces().items
    assert {lease.metadata.namespace for lease in node_leases} == {"kube-node-lease"}
    assert len(node_leases) == 8


def test_self_subject_access_review_is_allowed(api_client: Any) -> None:
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(verb="create", resource="pods")
        )
    )

    authorization: Any = client.AuthorizationV1Api(api_client)
    answer = authorization.create_self_subject_access_review(review)

    assert answer.status.allowed is True
    assert answer.spec.resource_attributes.resource == "pods"


@pytest.mark.parametrize("status", [409, 429, 500, 503])
def test_fail_next_answers_matching_requests_with_the_status(
    cluster: EmbeddedCluster, core: Any, status: int
) -> None:
    cluster.faults.fail_next(2, status, verb="create", resource="pods")

    for attempt in range(2):
        with pytest.raises(client.ApiException) as raised:
            core.create_namespaced_pod("default", a_pod(f"p{attempt}").build())
        assert raised.value.status == status
    core.list_namespaced_pod("default")
    created = core.create_namespaced_pod("default", a_pod("p").build())

    assert created.metadata.name == "p"
    assert [pod["metadata"]["name"] for pod in cluster.pods()] == ["p"]


def test_throttling_carries_retry_after(cluster: EmbeddedCluster) -> None:
    cluster.faults.fail_next(1, 429, retry_after=3)

    response = httpx.get(f"{cluster.url}/api/v1/nodes")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["reason"] == "TooManyRequests"
    assert response.json()["details"]["retryAfterSeconds"] == 3


def test_delay_next_provokes_client_timeouts(cluster: EmbeddedCluster, core: Any) -> None:
    # urllib3 retries a read timeout three times, so four delayed requests exhaust it.
    cluster.faults.delay_next(4, 0.3)

    with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        core.list_node(_request_timeout=0.05)

    assert isinstance(raised.value.reason, urllib3.exceptions.ReadTimeoutError)
    assert len(core.list_node().items) == 8


def test_request_count_by_verb_and_resource(cluster: EmbeddedCluster, core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("a").build())
    core.read_namespaced_pod("a", "default")
    core.list_namespaced_pod("default")
    core.list_node()

    assert cluster.request_count("create", "pods") == 1
    assert cluster.request_count(resource="pods") == 3
    assert cluster.request_count("list") == 2
    assert cluster.request_count() == 4
