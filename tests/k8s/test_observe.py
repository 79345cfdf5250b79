"""Folding raw pods and nodes into gang observations and node inventory (pure functions)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from k8s.observe import gang_observation, gang_observations, node_infos, parse_quantity
from k8s.types import NodeInfo, Resources, Taint
from tests.k8s.builders import a_node, a_pod

J = "jobs00001"
NODES: dict[str, NodeInfo] = {
    info.name: info
    for info in node_infos([a_node("node-0"), a_node("node-1"), a_node("sick", ready=False)], [])
}


def pods(*builders: Any) -> list[dict[str, Any]]:
    return [b.build() for b in builders]


GANG_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "all running": (
        pods(a_pod(J, 0).phase("Running"), a_pod(J, 1).phase("Running")),
        {"phase": "running"},
    ),
    "one still pending": (
        pods(a_pod(J, 0).phase("Running"), a_pod(J, 1)),
        {"phase": "pending"},
    ),
    "one done, one running": (
        pods(a_pod(J, 0).exited(0), a_pod(J, 1).phase("Running")),
        {"phase": "running"},
    ),
    "all succeeded": (
        pods(a_pod(J, 0).exited(0), a_pod(J, 1).exited(0)),
        {"phase": "succeeded"},
    ),
    "a worker exits non-zero": (
        pods(a_pod(J, 0).phase("Running"), a_pod(J, 1).exited(3)),
        {
            "phase": "failed",
            "exit_code": 3,
            "reason": "Error",
            "message": "worker 1 exited with code 3 (Error)",
            "retryable": False,
        },
    ),
    "deadline exceeded": (
        pods(a_pod(J, 0).exited(137).failed_because("DeadlineExceeded"), a_pod(J, 1)),
        {"phase": "failed", "reason": "DeadlineExceeded", "retryable": False},
    ),
    "rejected by the kubelet": (
        pods(a_pod(J, 0).failed_because("OutOfnvidia.com/gpu", "no gpu"), a_pod(J, 1)),
        {
            "phase": "failed",
            "exit_code": None,
            "message": "worker 0 failed (OutOfnvidia.com/gpu): no gpu",
        },
    ),
    "evicted is retryable": (
        pods(a_pod(J, 0).failed_because("Evicted"), a_pod(J, 1).phase("Running")),
        {"phase": "failed", "reason": "Evicted", "retryable": True},
    ),
    "being deleted": (
        pods(a_pod(J, 0).phase("Running").terminating(), a_pod(J, 1).phase("Running")),
        {"phase": "terminating"},
    ),
    "dispatch cut short": (
        pods(a_pod(J, 0)),
        {"phase": "partial"},
    ),
    "a started worker vanished": (
        pods(a_pod(J, 1).phase("Running")),
        {
            "phase": "failed",
            "reason": "PodsLost",
            "retryable": True,
            "message": "worker(s) 0 vanished after the gang had started",
        },
    ),
    "node not ready": (
        pods(a_pod(J, 0).phase("Running"), a_pod(J, 1).phase("Running").on("sick")),
        {
            "phase": "failed",
            "reason": "NodeLost",
            "retryable": True,
            "message": "node sick of worker 1 is NotReady",
        },
    ),
    "node gone": (
        pods(a_pod(J, 0).phase("Running").on("vanished"), a_pod(J, 1).phase("Running")),
        {"phase": "failed", "reason": "NodeLost", "message": "node vanished of worker 0 is gone"},
    ),
    "finished workers do not care about their node": (
        pods(a_pod(J, 0).exited(0).on("vanished"), a_pod(J, 1).exited(0)),
        {"phase": "succeeded"},
    ),
    "only the newest attempt counts": (
        pods(
            a_pod(J, 0, attempt=0).exited(1).terminating(),
            a_pod(J, 1, attempt=1).phase("Running"),
            a_pod(J, 0, attempt=1).phase("Running"),
        ),
        {"phase": "running", "attempt": 1},
    ),
}


@pytest.mark.parametrize(("pod_list", "expected"), GANG_CASES.values(), ids=GANG_CASES.keys())
def test_gang_phase(pod_list: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    observation = gang_observation(J, pod_list, NODES)
    actual = {key: getattr(observation, key) for key in expected}
    assert actual == expected


def test_workers_are_reported_in_order_with_details() -> None:
    observation = gang_observation(J, pods(a_pod(J, 1).exited(2), a_pod(J, 0).phase("Running")))
    assert [(w.worker, w.phase, w.exit_code, w.node) for w in observation.pods] == [
        (0, "Running", None, "node-0"),
        (1, "Failed", 2, "node-1"),
    ]
    assert (observation.workers, observation.namespace) == (2, "yushan-physics")


def test_without_node_information_node_loss_is_not_guessed() -> None:
    observation = gang_observation(J, pods(a_pod(J, 0, workers=1).phase("Running").on("gone")))
    assert observation.phase == "running"


def test_pods_are_grouped_by_job_and_foreign_pods_ignored() -> None:
    observed = gang_observations(
        pods(
            a_pod("ja", 0, workers=1).phase("Running"),
            a_pod("jb", 0).phase("Running"),
            a_pod("jb", 1).phase("Running"),
            a_pod("jc", 0).foreign(),
        )
    )
    assert {job: o.phase for job, o in observed.items()} == {"ja": "running", "jb": "running"}


def test_node_inventory_with_foreign_usage() -> None:
    foreign_running = a_pod("x", 0).foreign().on("node-0").phase("Running")
    foreign_pending = a_pod("y", 0).foreign().on("node-0")
    foreign_done = a_pod("z", 0).foreign().on("node-0").exited(0)
    ours = a_pod(J, 0).on("node-0").phase("Running")
    foreign_running.requests(**{"nvidia.com/gpu": "2", "cpu": "1500m", "memory": "1Gi"})
    foreign_pending.requests(cpu="500m")
    foreign_done.requests(**{"nvidia.com/gpu": "4"})
    ours.requests(**{"nvidia.com/gpu": "8"})
    infos = node_infos(
        [a_node("node-0"), a_node("node-1", ready=False)],
        pods(foreign_running, foreign_pending, foreign_done, ours),
    )
    node0, node1 = infos
    assert node0.foreign == Resources(gpu=2, cpu_milli=2000, memory_bytes=2**30)
    assert node0.allocatable == Resources(8, 96_000, 1440 * 2**30)
    assert node0.taints == (Taint("nvidia.com/gpu", "NoSchedule", "present"),)
    assert (node0.flavor, node0.ready, node1.ready) == ("h100", True, False)
    assert node1.foreign == Resources()


def test_init_containers_count_when_larger_than_the_containers() -> None:
    pod = a_pod("x", 0).foreign().on("node-0").requests(cpu="1").build()
    pod["spec"]["initContainers"] = [{"name": "init", "resources": {"limits": {"cpu": "3"}}}]
    (info,) = node_infos([a_node("node-0")], [pod])
    assert info.foreign.cpu_milli == 3000


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", Decimal(8)),
        ("500m", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        ("1G", Decimal(10**9)),
        ("1.5Ki", Decimal(1536)),
        ("1e3", Decimal(1000)),
        ("100u", Decimal("0.0001")),
        (4, Decimal(4)),
        ("garbage", Decimal(0)),
        ("1Xi", Decimal(0)),
    ],
)
def test_quantities(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value
