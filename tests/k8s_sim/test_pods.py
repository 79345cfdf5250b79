"""Pods through the official client: creation, binding, the simulated kubelet's lifecycle,
admission, deletion and API errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from k8s.sim import EmbeddedCluster, NodeSpec
from tests.k8s_sim.conftest import a_pod, pod_phase, wait_for, wait_for_phase


def test_namespace_create_get_list_delete(core: Any) -> None:
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="lab")))
    core.create_namespaced_pod("lab", a_pod("p").build())

    assert created.status.phase == "Active"
    assert "lab" in {ns.metadata.name for ns in core.list_namespace().items}
    core.delete_namespace("lab")
    assert "lab" not in {ns.metadata.name for ns in core.list_namespace().items}
    assert core.list_pod_for_all_namespaces(field_selector="metadata.namespace=lab").items == []


def test_pod_in_unknown_namespace_is_not_found(core: Any) -> None:
    with pytest.raises(client.ApiException) as raised:
        core.create_namespaced_pod("nowhere", a_pod("p").build())

    assert raised.value.status == 404


def test_bound_pod_runs_then_succeeds(core: Any) -> None:
    pod = a_pod("train").on("h100-0").gpus(8).runs_for(20).build()
    created = core.create_namespaced_pod("default", pod)
    assert created.status.phase == "Pending"
    assert created.metadata.uid
    assert int(created.metadata.resource_version) > 0

    running = wait_for_phase(core, "train", "Running")
    assert running.status.container_statuses[0].state.running.started_at is not None
    assert running.status.host_ip == "10.0.0.11"
    assert running.status.pod_ip
    assert running.status.start_time is not None
    assert {c.type for c in running.status.conditions if c.status == "True"} >= {"Ready"}

    done = wait_for_phase(core, "train", "Succeeded")
    terminated = done.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")


@pytest.mark.parametrize(
    ("builder", "phase", "pod_reason", "exit_code"),
    [
        (a_pod("ok").on("v100-0").runs_for(5), "Succeeded", None, 0),
        (a_pod("crash").on("v100-0").runs_for(5).exits_with(3), "Failed", None, 3),
        (a_pod("slow").on("v100-0").runs_for(600).deadline(10), "Failed", "DeadlineExceeded", 137),
    ],
    ids=["succeeds", "exit-code", "deadline"],
)
def test_pod_outcomes(
    core: Any, builder: Any, phase: str, pod_reason: str | None, exit_code: int
) -> None:
    pod = builder.build()
    core.create_namespaced_pod("default", pod)

    done = wait_for_phase(core, pod.metadata.name, phase)

    assert done.status.reason == pod_reason
    assert done.status.container_statuses[0].state.terminated.exit_code == exit_code


def test_unbound_pod_stays_pending_until_bound(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("waiting").runs_for(1).build())
    unbound = core.list_namespaced_pod("default", field_selector="spec.nodeName=").items

    assert [pod.metadata.name for pod in unbound] == ["waiting"]
    assert pod_phase(core, "waiting") == "Pending"
    binding = client.V1Binding(
        metadata=client.V1ObjectMeta(name="waiting"),
        target=client.V1ObjectReference(kind="Node", name="h100-1"),
    )
    core.create_namespaced_binding("default", binding, _preload_content=False)

    assert core.read_namespaced_pod("waiting", "default").spec.node_name == "h100-1"
    wait_for_phase(core, "waiting", "Succeeded")
    on_node = core.list_namespaced_pod("default", field_selector="spec.nodeName=h100-1").items
    assert [pod.metadata.name for pod in on_node] == ["waiting"]


def test_binding_an_already_bound_pod_is_a_conflict(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("bound").on("h100-0").build())
    binding = client.V1Binding(
        metadata=client.V1ObjectMeta(name="bound"),
        target=client.V1ObjectReference(kind="Node", name="h100-1"),
    )

    with pytest.raises(client.ApiException) as raised:
        core.create_namespaced_pod_binding("bound", "default", binding, _preload_content=False)

    assert raised.value.status == 409
    assert core.read_namespaced_pod("bound", "default").spec.node_name == "h100-0"


def test_pod_beyond_node_gpus_is_rejected_like_the_kubelet(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("first").on("h100-2").gpus(6).build())
    core.create_namespaced_pod("default", a_pod("second").on("h100-2").gpus(4).build())

    rejected = wait_for_phase(core, "second", "Failed")

    assert rejected.status.reason == "OutOfnvidia.com/gpu"
    assert "requested: 4, used: 6, capacity: 8" in rejected.status.message
    assert pod_phase(core, "first") in ("Pending", "Running")


@pytest.mark.parametrize(
    ("builder", "reason"),
    [
        (a_pod("big").on("v100-0").cpu("49"), "OutOfcpu"),
        (a_pod("wrong").on("v100-0").selecting(**{"yushan.io/flavor": "h100"}), "NodeAffinity"),
    ],
    ids=["cpu", "node-selector"],
)
def test_kubelet_admission_failures(core: Any, builder: Any, reason: str) -> None:
    pod = builder.build()
    core.create_namespaced_pod("default", pod)

    assert wait_for_phase(core, pod.metadata.name, "Failed").status.reason == reason
    events = core.list_namespaced_event("default", field_selector=f"reason={reason}").items
    assert [event.involved_object.name for event in events] == [pod.metadata.name]


def test_foreign_pod_consumes_capacity(core: Any) -> None:
    core.create_namespaced_pod("kube-system", a_pod("foreign").on("v100-1").gpus(8).build())
    core.create_namespaced_pod("default", a_pod("ours").on("v100-1").gpus(1).build())

    assert wait_for_phase(core, "ours", "Failed").status.reason == "OutOfnvidia.com/gpu"


def test_finished_pod_frees_its_gpus(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("short").on("v100-2").gpus(8).runs_for(1).build())
    wait_for_phase(core, "short", "Succeeded")
    core.create_namespaced_pod("default", a_pod("next").on("v100-2").gpus(8).build())

    wait_for_phase(core, "next", "Running")


def test_pod_on_not_ready_node_starts_once_ready(cluster: EmbeddedCluster, core: Any) -> None:
    cluster.set_node_ready("v100-3", ready=False)
    core.create_namespaced_pod("default", a_pod("parked").on("v100-3").build())
    core.create_namespaced_pod("default", a_pod("barrier").on("v100-2").build())
    wait_for_phase(core, "barrier", "Running")

    assert pod_phase(core, "parked") == "Pending"
    assert core.read_namespaced_pod("parked", "default").status.start_time is None
    cluster.set_node_ready("v100-3", ready=True)
    wait_for_phase(core, "parked", "Running")


def test_added_node_accepts_pods_and_removed_node_loses_them(
    cluster: EmbeddedCluster, core: Any
) -> None:
    cluster.add_node(NodeSpec(name="extra", gpus=2))
    core.create_namespaced_pod("default", a_pod("p").on("extra").gpus(2).build())
    wait_for_phase(core, "p", "Running")

    cluster.remove_node("extra")

    wait_for(lambda: not cluster.pods("default"))
    assert "extra" not in {node.metadata.name for node in core.list_node().items}
    leases: Any = client.CoordinationV1Api(core.api_client)
    assert "extra" not in {
        lease.metadata.name for lease in leases.list_lease_for_all_namespaces().items
    }


def test_graceful_deletion_marks_then_removes_running_pod(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("victim").on("h100-3").build())
    wait_for_phase(core, "victim", "Running")

    marked = core.delete_namespaced_pod("victim", "default", grace_period_seconds=30)

    assert marked.metadata.deletion_timestamp is not None
    assert marked.metadata.deletion_grace_period_seconds == 30
    wait_for(lambda: not core.list_namespaced_pod("default").items)


@pytest.mark.parametrize(
    ("node", "grace"), [(None, 30), ("h100-3", 0)], ids=["not-running", "grace-zero"]
)
def test_deletion_is_immediate_when_not_running_or_grace_zero(
    core: Any, node: str | None, grace: int
) -> None:
    builder = a_pod("gone")
    if node:
        builder.on(node)
    core.create_namespaced_pod("default", builder.build())
    if node:
        wait_for_phase(core, "gone", "Running")

    core.delete_namespaced_pod(
        "gone", "default", body=client.V1DeleteOptions(grace_period_seconds=grace)
    )

    with pytest.raises(client.ApiException) as raised:
        core.read_namespaced_pod("gone", "default")
    assert raised.value.status == 404


def test_delete_collection_by_label_selector(core: Any) -> None:
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_pod("default", a_pod(name).labelled(team=team).build())

    core.delete_collection_namespaced_pod("default", label_selector="team=x")

    assert [pod.metadata.name for pod in core.list_namespaced_pod("default").items] == ["c"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("team=x", ["a", "b"]),
        ("team!=x", ["c", "d"]),
        ("team in (x,y)", ["a", "b", "c"]),
        ("!team", ["d"]),
        ("team,tier=gpu", ["b"]),
    ],
)
def test_label_selectors_on_all_namespace_list(
    core: Any, selector: str, expected: list[str]
) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="other")))
    core.create_namespaced_pod("default", a_pod("a").labelled(team="x").build())
    core.create_namespaced_pod("other", a_pod("b").labelled(team="x", tier="gpu").build())
    core.create_namespaced_pod("default", a_pod("c").labelled(team="y").build())
    core.create_namespaced_pod("other", a_pod("d").build())

    pods = core.list_pod_for_all_namespaces(label_selector=selector).items

    assert sorted(pod.metadata.name for pod in pods) == expected


@pytest.mark.parametrize(
    ("call", "status", "reason"),
    [
        (lambda core: core.read_namespaced_pod("missing", "default"), 404, "NotFound"),
        (
            lambda core: core.create_namespaced_pod("default", a_pod("twin").build()),
            409,
            "AlreadyExists",
        ),
        (
            lambda core: core.create_namespaced_pod("default", a_pod("Bad_Name").build()),
            422,
            "Invalid",
        ),
    ],
    ids=["not-found", "already-exists", "invalid"],
)
def test_errors_are_status_objects(core: Any, call: Any, status: int, reason: str) -> None:
    core.create_namespaced_pod("default", a_pod("twin").build())

    with pytest.raises(client.ApiException) as raised:
        call(core)

    assert raised.value.status == status
    body = json.loads(raised.value.body or "{}")
    assert (body["kind"], body["code"], body["reason"]) == ("Status", status, reason)


def test_services_and_events(core: Any) -> None:
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="rdzv"),
        spec=client.V1ServiceSpec(cluster_ip="None", selector={"job": "j1"}),
    )
    created = core.create_namespaced_service("default", service)
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="j1.1"),
        involved_object=client.V1ObjectReference(kind="Pod", name="j1-0", namespace="default"),
        reason="Admitted",
        message="admitted by yushan",
        type="Normal",
    )
    core.create_namespaced_event("default", event)

    assert created.spec.cluster_ip == "None"
    assert [s.metadata.name for s in core.list_namespaced_service("default").items] == ["rdzv"]
    events = core.list_namespaced_event("default", field_selector="involvedObject.name=j1-0")
    assert [e.reason for e in events.items] == ["Admitted"]
    core.delete_namespaced_service("rdzv", "default")
    assert core.list_namespaced_service("default").items == []


def test_cordon_by_strategic_merge_patch(core: Any) -> None:
    core.patch_node("h100-0", {"spec": {"unschedulable": True}})

    assert core.read_node("h100-0").spec.unschedulable is True
    assert core.read_node("h100-0").spec.taints[0].key == "nvidia.com/gpu"


def test_patches_change_status_only_through_the_status_subresource(core: Any) -> None:
    core.create_namespaced_pod("default", a_pod("p").labelled(queue="q1").build())
    core.patch_namespaced_pod(
        "p", "default", [{"op": "replace", "path": "/metadata/labels/queue", "value": "q2"}]
    )
    condition = {"type": "YushanAdmitted", "status": "True"}
    core.patch_namespaced_pod_status(
        "p", "default", {"status": {"conditions": [condition]}, "spec": {"nodeName": "x"}}
    )

    core.patch_namespaced_pod("p", "default", {"status": {"phase": "Succeeded"}})

    pod = core.read_namespaced_pod("p", "default")
    assert pod.status.phase == "Pending"
    assert pod.metadata.labels == {"queue": "q2"}
    assert [c.type for c in pod.status.conditions] == ["YushanAdmitted"]
    assert pod.spec.node_name is None


def test_dry_run_is_refused_rather_than_applied(core: Any) -> None:
    with pytest.raises(client.ApiException) as raised:
        core.create_namespaced_pod("default", a_pod("p").build(), dry_run="All")

    assert raised.value.status == 400
    assert core.list_namespaced_pod("default").items == []
