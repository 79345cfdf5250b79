"""Fault tests against the embedded cluster: API errors, dropped watches, crashes, lost nodes.

Each test gets a fresh embedded cluster (they inject faults and remove nodes). The outcome is
always counted: no job lost, no duplicate pod, no orphan.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client

from k8s import manifests as mf
from k8s.client import ClientOptions, ClusterClient
from k8s.errors import ClusterServerError, ClusterUnreachable, RetryPolicy
from k8s.sim import EmbeddedCluster
from k8s.transport import TransportOptions
from k8s.types import WorkloadSpec
from k8s.watcher import ClusterWatcher
from tests.k8s.builders import a_workload
from tests.k8s.conftest import FAST_RETRY, TEST_OPTIONS
from tests.k8s.helpers import dead_kubeconfig, gangs, wait_for, wait_for_gang

GANG_NODES = ("h100-0", "h100-1", "h100-2")


def gang(workers: int = 3, seconds: float = 300) -> WorkloadSpec:
    return a_workload().workers(workers, GANG_NODES).lasting(seconds).build()


def pods_of(cluster: EmbeddedCluster, spec: WorkloadSpec) -> list[dict[str, Any]]:
    return [p for p in cluster.pods() if mf.label(p, mf.LABEL_JOB) == spec.job_id]


def live_pod_names(cluster: EmbeddedCluster, spec: WorkloadSpec) -> list[str]:
    return sorted(
        p["metadata"]["name"]
        for p in pods_of(cluster, spec)
        if not p["metadata"].get("deletionTimestamp")
    )


def expected_names(spec: WorkloadSpec) -> list[str]:
    return sorted(mf.pod_name(spec.job_id, i) for i in range(spec.workers))


# -- API errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [409, 500, 503, 504])
def test_transient_errors_on_pod_creation_are_retried(
    embedded: EmbeddedCluster, embedded_client: ClusterClient, status: int
) -> None:
    spec = gang()
    embedded.faults.fail_next(2, status, verb="create", resource="pods")
    embedded_client.dispatch(spec)
    assert live_pod_names(embedded, spec) == expected_names(spec)
    assert embedded.request_count("create", "pods") == spec.workers + 2


def test_transient_errors_on_deletion_are_retried(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    spec = gang()
    embedded_client.dispatch(spec)
    embedded.faults.fail_next(2, 503, verb="delete", resource="pods")
    embedded.faults.fail_next(1, 500, verb="list", resource="pods")
    assert embedded_client.delete_job(spec.job_id, spec.namespace, grace_seconds=0) == 3
    wait_for(lambda: not pods_of(embedded, spec), "the pods to be gone")


def test_the_watcher_survives_failing_lists_and_watches(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    embedded.faults.fail_next(3, 500, verb="list", resource="pods")
    embedded.faults.fail_next(2, 503, verb="watch", resource="nodes")
    spec = gang(workers=2)
    with ClusterWatcher(embedded_client, backoff_max=0.1) as watcher:
        assert watcher.wait_synced(10)
        embedded_client.dispatch(spec)
        wait_for_gang(watcher.gangs, spec.job_id, "pending", "running")
        assert len(watcher.nodes()) == 8
        # Two failed node watches, then one that holds: the watcher must get there by itself.
        wait_for(
            lambda: embedded.request_count("watch", "nodes") >= 3, "the node watch to be retried"
        )
    assert embedded.request_count("list", "pods") >= 4  # three failed lists, then one good


def test_rate_limiting_honours_retry_after(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    spec = gang(workers=1)
    embedded.faults.fail_next(1, 429, verb="create", resource="pods", retry_after=1)
    started = time.monotonic()
    embedded_client.dispatch(spec)
    assert time.monotonic() - started >= 1.0
    assert live_pod_names(embedded, spec) == expected_names(spec)


def test_timed_out_creates_are_retried_without_duplicates(
    embedded: EmbeddedCluster, tmp_path: Path
) -> None:
    options = ClientOptions(
        transport=TransportOptions(read_timeout=0.2, retry=FAST_RETRY), parallelism=4
    )
    path = embedded.write_kubeconfig(tmp_path / "config")
    spec = gang()
    embedded.faults.delay_next(2, 0.5, verb="create", resource="pods")
    with ClusterClient.from_kubeconfig(path, options=options) as client:
        client.dispatch(spec)
        time.sleep(0.6)  # let the delayed (abandoned) creates reach the store
        assert live_pod_names(embedded, spec) == expected_names(spec)
        assert len(pods_of(embedded, spec)) == spec.workers


def test_persistent_server_errors_give_up_within_the_deadline(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    embedded.faults.fail_next(1000, 500, verb="create", resource="pods")
    started = time.monotonic()
    with pytest.raises(ClusterServerError):
        embedded_client.dispatch(gang(workers=2))
    assert time.monotonic() - started < FAST_RETRY.deadline


def test_an_unreachable_cluster_fails_fast_and_says_so(tmp_path: Path) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, deadline=2.0)
    options = ClientOptions(transport=TransportOptions(connect_timeout=0.5, retry=policy))
    started = time.monotonic()
    jobs = [a_workload(tenant=f"t{i}").build() for i in range(20)]
    with ClusterClient.from_kubeconfig(dead_kubeconfig(tmp_path), options=options) as client:
        errors = client.dispatch_many(jobs)  # one deadline for the batch, not one per job
        with pytest.raises(ClusterUnreachable):
            client.list_nodes()
    assert time.monotonic() - started < 2 * policy.deadline
    assert set(errors) == {job.job_id for job in jobs}
    assert all(isinstance(e, ClusterUnreachable) for e in errors.values())
    assert "unreachable" in str(errors[jobs[-1].job_id])


def test_timeouts_during_a_batch_fail_the_rest_of_it_fast(
    embedded: EmbeddedCluster, tmp_path: Path
) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, deadline=1.0)
    transport = TransportOptions(read_timeout=0.1, retry=policy)
    jobs = [gang(workers=3) for _ in range(10)]
    embedded.faults.delay_next(1000, 0.5, verb="create", resource="pods")
    path = embedded.write_kubeconfig(tmp_path / "config")
    options = ClientOptions(transport=transport, parallelism=2)
    with ClusterClient.from_kubeconfig(path, options=options) as client:
        started = time.monotonic()
        errors = client.dispatch_many(jobs)
        elapsed = time.monotonic() - started
    assert elapsed < 3 * policy.deadline  # 30 creates on 2 threads would take 15 deadlines
    assert all(isinstance(errors[job.job_id], ClusterUnreachable) for job in jobs)
    embedded.faults.clear()


# -- watches ------------------------------------------------------------------------------


def test_dropped_watches_resume_from_the_last_resource_version(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    spec = gang(workers=2)
    with ClusterWatcher(embedded_client, watch_timeout_seconds=30) as watcher:
        assert watcher.wait_synced(5)
        embedded.faults.drop_watches()
        wait_for(lambda: watcher.stats()["pod_resumes"] >= 1, "the pod watch to end")
        embedded_client.dispatch(spec)
        wait_for(lambda: spec.job_id in watcher.gangs(), "the watcher to see the new gang")
        stats = watcher.stats()
    assert stats["pod_relists"] == 1  # resumed from its resourceVersion, no relist


def test_a_compacted_resource_version_makes_the_watch_relist(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    first, second = gang(workers=1), gang(workers=2)
    with ClusterWatcher(embedded_client, watch_timeout_seconds=30) as watcher:
        assert watcher.wait_synced(5)
        embedded_client.dispatch(first)
        wait_for_gang(watcher.gangs, first.job_id, "running")
        embedded.set_node_ready("v100-3", True)  # history moves on past the pod watch's version
        embedded.faults.compact()
        embedded.faults.drop_watches()
        wait_for(lambda: watcher.stats()["pod_relists"] >= 2, "a relist after 410 Gone")
        embedded_client.dispatch(second)
        wait_for(lambda: second.job_id in watcher.gangs(), "the second gang")
        assert set(watcher.gangs()) == {first.job_id, second.job_id}


def test_the_cache_resyncs_on_schedule_and_tells_its_listeners(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    calls: list[int] = []
    spec = gang(workers=1)
    with ClusterWatcher(embedded_client, watch_timeout_seconds=30, resync_seconds=1) as watcher:
        watcher.add_listener(lambda: calls.append(1))
        assert watcher.wait_synced(5)
        before = len(calls)
        embedded_client.dispatch(spec)
        wait_for(lambda: len(calls) > before, "a listener call for the new pod")
        wait_for(lambda: spec.job_id in watcher.gangs(), "the gang in the cache")
        # Watches end at the resync time (not their 30 s timeout) and the cache relists.
        wait_for(
            lambda: watcher.stats()["pod_relists"] >= 2 and watcher.stats()["node_relists"] >= 2,
            "a periodic resync",
        )
        assert spec.job_id in watcher.gangs()


def test_without_resync_a_watch_never_relists(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    with ClusterWatcher(embedded_client, watch_timeout_seconds=1) as watcher:
        assert watcher.wait_synced(5)
        lists = embedded.request_count("list")
        wait_for(lambda: watcher.stats()["pod_resumes"] >= 2, "two watch timeouts")
        assert embedded.request_count("list") == lists  # resumed by resourceVersion only
        assert watcher.stats()["pod_relists"] == 1


# -- crashes during dispatch --------------------------------------------------------------


class Crash(BaseException):
    """The scheduler process dies at this point (not an Exception: nothing may catch it)."""


class CrashingApiClient(k8s_client.ApiClient):
    """Lets ``survive`` object creations through, then 'kills the process' on the next one.

    With ``after_commit`` the fatal request still reaches the server (the crash falls between
    the server storing the object and the scheduler learning it did).
    """

    def __init__(self, configuration: Any, survive: int, after_commit: bool) -> None:
        super().__init__(configuration)
        self.survive = survive
        self.after_commit = after_commit
        self.dead = False

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if self.dead:  # a dead process sends nothing more, from any thread
            raise Crash
        creating = method == "POST" and url.rsplit("?", 1)[0].endswith(("/pods", "/services"))
        if creating and self.survive == 0:
            self.dead = True
            if self.after_commit:
                super().call_api(method, url, *args, **kwargs).response.drain_conn()
            raise Crash
        if creating:
            self.survive -= 1
        return super().call_api(method, url, *args, **kwargs)


CRASH_POINTS = [
    (survive, after_commit)
    for survive in range(4)  # a 3-worker gang makes 4 creates: Service, 3 pods
    for after_commit in (False, True)
]


@pytest.mark.parametrize("still_desired", [True, False], ids=["admitted", "not-recorded"])
@pytest.mark.parametrize(("survive", "after_commit"), CRASH_POINTS)
def test_a_crash_at_any_step_of_dispatch_is_repaired_by_reconcile(
    embedded: EmbeddedCluster, survive: int, after_commit: bool, still_desired: bool
) -> None:
    spec, bystander = gang(), gang(workers=2)
    options = ClientOptions(transport=TransportOptions(retry=FAST_RETRY), parallelism=1)
    configuration = embedded.api_client().configuration
    first = ClusterClient(CrashingApiClient(configuration, survive, after_commit), options)
    first.ensure_namespace(spec.namespace, spec.tenant)
    with pytest.raises(Crash):
        first.dispatch_many([spec, bystander])
    first.close()  # joins the pool threads: nothing of the dead process runs on

    desired = {bystander.job_id: bystander} | ({spec.job_id: spec} if still_desired else {})
    with ClusterClient(embedded.api_client(), TEST_OPTIONS) as successor:
        report = successor.reconcile(desired)
        assert not report.errors

        for job in desired.values():  # no job lost, no duplicate
            assert live_pod_names(embedded, job) == expected_names(job)
            assert len(pods_of(embedded, job)) == job.workers
            assert {
                p["metadata"]["labels"]["yushan.io/attempt"] for p in pods_of(embedded, job)
            } == {"0"}
        if not still_desired:  # no orphan
            assert live_pod_names(embedded, spec) == []
            wait_for(lambda: not pods_of(embedded, spec), "the orphans to be gone")
        assert successor.reconcile(desired).created == ()


# -- lost nodes -----------------------------------------------------------------------------


def running(client: ClusterClient, spec: WorkloadSpec) -> None:
    wait_for_gang(lambda: gangs(client), spec.job_id, "running")


def test_a_not_ready_node_fails_its_gang_over_as_retryable(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    spec = gang(workers=2)
    embedded_client.dispatch(spec)
    running(embedded_client, spec)
    embedded.set_node_ready(GANG_NODES[1], False)
    observation = gangs(embedded_client)[spec.job_id]
    assert (observation.phase, observation.reason, observation.retryable) == (
        "failed",
        "NodeLost",
        True,
    )
    assert f"node {GANG_NODES[1]}" in (observation.message or "")


def test_a_deleted_node_fails_its_gang_over_as_retryable(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    spec = gang(workers=2)
    embedded_client.dispatch(spec)
    running(embedded_client, spec)
    with ClusterWatcher(embedded_client, watch_timeout_seconds=30) as watcher:
        assert watcher.wait_synced(5)
        embedded.remove_node(GANG_NODES[1])
        lost = wait_for_gang(watcher.gangs, spec.job_id, "failed")
    assert lost.retryable
    assert lost.reason in ("NodeLost", "PodsLost")
    polled = wait_for_gang(lambda: gangs(embedded_client), spec.job_id, "failed", reason="PodsLost")
    assert (polled.phase, polled.retryable) == ("failed", True)


def test_a_single_worker_job_on_a_deleted_node_has_no_gang_left(
    embedded: EmbeddedCluster, embedded_client: ClusterClient
) -> None:
    spec = gang(workers=1)
    embedded_client.dispatch(spec)
    running(embedded_client, spec)
    embedded.remove_node(GANG_NODES[0])
    wait_for(lambda: not pods_of(embedded, spec), "the pod to be collected")
    # The loop, which knows the job should run, treats the absence as "missing" (PodsLost).
    assert spec.job_id not in gangs(embedded_client)
