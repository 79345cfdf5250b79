"""Submit-time truth: against the node inventory the scheduler recorded, a worker no node of
its flavor can hold (GPUs, CPU or memory, the flavor's defaults included) is refused naming the
largest node; a flavor whose labels select no node needs ``allow_empty``; the cluster view shows
each node's labels and GPU product. With no inventory yet (scheduler not started), nothing is
refused on those grounds."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from store import cluster
from store.db import session_factory, transaction
from tests.api.builders import ApiDriver, a_job
from tests.api.test_bad_input import assert_problem

GIB = 2**30
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
V100 = {"nvidia.com/gpu.product": "Tesla-V100-SXM2-32GB"}


def node(name: str, flavor: str | None, labels: dict[str, str], cpu: int, memory_gib: int) -> Any:
    return cluster.NodeRecord(
        name=name,
        flavor=flavor,
        labels={**labels, "kubernetes.io/hostname": name},
        gpu_capacity=8,
        gpu_allocatable=8,
        gpu_allocated=0,
        cpu_milli_allocatable=cpu * 1000,
        memory_bytes_allocatable=memory_gib * GIB,
        ready=True,
        schedulable=True,
    )


def record_inventory(engine: Engine, *records: Any) -> None:
    """What the scheduler loop does after its iteration (store.cluster.replace_nodes)."""
    with transaction(session_factory(engine)) as session:
        cluster.replace_nodes(session, records)


@pytest.fixture
def platform(api: ApiDriver, engine: Engine) -> ApiDriver:
    api.setup_platform(tenants=("lab-a",))
    api.ok(api.post("/v1/flavors", {"name": "v100", "node_labels": V100}), 201)
    quota = {"flavors": {"h100": {"gpu": {"nominal": 64}}, "v100": {"gpu": {"nominal": 64}}}}
    api.ok(api.put("/v1/tenants/lab-a/quota", quota))
    record_inventory(
        engine,
        node("h100-0", "h100", H100, cpu=96, memory_gib=1440),
        node("v100-0", "v100", V100, cpu=48, memory_gib=384),
        node("v100-1", "v100", V100, cpu=96, memory_gib=256),
    )
    return api


REFUSED: list[tuple[str, dict[str, Any], str, list[str]]] = [
    (
        "v100 with 8 GPUs and the default 90Gi per GPU",
        {"flavor": "v100", "gpus": 8},
        "body.memory",
        [
            "720Gi",
            "the v100 default per GPU: 4 CPU and 90Gi memory",
            "v100-0",
            "8 GPUs, 48 CPU and 384Gi",
        ],
    ),
    (
        "cpu 500 on 96-CPU nodes",
        {"flavor": "h100", "gpus": 1, "cpu": "500"},
        "body.cpu",
        ["500 CPU", "h100-0", "96 CPU", "less CPU"],
    ),
    (
        "more GPUs per worker than any node",
        {"flavor": "h100", "gpus": 16, "memory": "100Gi"},
        "body.gpus",
        ["16 GPUs", "h100-0", "more workers"],
    ),
    (
        "enough memory and enough CPU, but never on the same node",
        {"flavor": "v100", "gpus": 1, "cpu": 90, "memory": "300Gi"},
        "body.memory",
        ["v100-", "no v100 node can hold it"],
    ),
]


@pytest.mark.parametrize(("case", "fields", "field", "words"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_worker_no_node_can_hold_is_refused_naming_the_largest_node(
    platform: ApiDriver, case: str, fields: dict[str, Any], field: str, words: list[str]
) -> None:
    body = {**a_job().body(), **fields}
    problem = assert_problem(platform.post("/v1/jobs", body), 422)
    assert [e["field"] for e in problem["errors"]] == [field]
    for word in words:
        assert word in problem["detail"], (word, problem["detail"])
    assert platform.ok(platform.get("/v1/jobs"))["items"] == []


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("v100 with 8 GPUs and memory that fits", {"flavor": "v100", "gpus": 8, "memory": "300Gi"}),
    ("v100 with 4 GPUs: 360Gi by default", {"flavor": "v100", "gpus": 4}),
    ("h100 with 8 GPUs and the defaults", {"flavor": "h100", "gpus": 8}),
    ("the whole node", {"flavor": "h100", "gpus": 8, "cpu": 96, "memory": "1440Gi"}),
]


@pytest.mark.parametrize(("case", "fields"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_a_worker_some_node_can_hold_is_accepted(
    platform: ApiDriver, case: str, fields: dict[str, Any]
) -> None:
    platform.ok(platform.post("/v1/jobs", {**a_job().body(), **fields}), 201)


def test_without_an_inventory_nothing_is_refused_for_size(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    body = {**a_job().body(), "gpus": 8, "cpu": "5000", "memory": "1Pi"}
    api.ok(api.post("/v1/jobs", body), 201)
    # And any labels make a flavor: the scheduler has not said which nodes exist.
    api.ok(api.post("/v1/flavors", {"name": "a100", "node_labels": {"gpu": "a100"}}), 201)


def test_a_flavor_selecting_no_node_is_refused_unless_allow_empty(platform: ApiDriver) -> None:
    body = {"name": "a100", "node_labels": {"nvidia.com/gpu.product": "NVIDIA-A100"}}
    problem = assert_problem(platform.post("/v1/flavors", body), 422, "body.node_labels")
    assert "nvidia.com/gpu.product=NVIDIA-A100" in problem["detail"]
    assert "3 nodes known" in problem["detail"]
    assert "Tesla-V100-SXM2-32GB" in problem["detail"]  # what the cluster does carry
    assert "allow_empty" in problem["detail"]
    assert platform.get("/v1/flavors/a100").status_code == 404
    created = platform.ok(platform.post("/v1/flavors", {**body, "allow_empty": True}), 201)
    assert created["name"] == "a100"
    # Its jobs are taken and wait (the cycle says NoNodesForFlavor).
    quota = {"flavors": {"a100": {"gpu": {"nominal": 8}}}}
    platform.ok(platform.put("/v1/tenants/lab-a/quota", quota))
    platform.ok(platform.post("/v1/jobs", {**a_job().body(), "flavor": "a100", "gpus": 8}), 201)


def test_a_flavor_created_since_the_last_iteration_is_checked_by_its_labels(
    platform: ApiDriver,
) -> None:
    # Same nodes as v100 (the loop has not assigned them to the new flavor yet).
    body = {"name": "v100-big", "node_labels": V100, "memory_per_gpu": "32Gi"}
    platform.ok(platform.post("/v1/flavors", body), 201)
    quota = {"flavors": {"v100-big": {"gpu": {"nominal": 64}}}}
    platform.ok(platform.put("/v1/tenants/lab-a/quota", quota))
    job = {**a_job().body(), "flavor": "v100-big"}
    platform.ok(platform.post("/v1/jobs", {**job, "gpus": 8}), 201)
    problem = assert_problem(platform.post("/v1/jobs", {**job, "gpus": 4, "cpu": 200}), 422)
    assert "v100-1" in problem["detail"] or "v100-0" in problem["detail"]


def test_the_cluster_view_shows_labels_and_gpu_product(platform: ApiDriver) -> None:
    view = platform.ok(platform.get("/v1/cluster"))
    nodes = {n["name"]: n for n in view["nodes"]}
    assert nodes["v100-0"]["gpu_product"] == "Tesla-V100-SXM2-32GB"
    assert nodes["v100-0"]["labels"] == {**V100, "kubernetes.io/hostname": "v100-0"}
    assert (nodes["v100-0"]["cpu_allocatable"], nodes["v100-0"]["memory_allocatable"]) == (
        "48",
        "384Gi",
    )
    assert nodes["h100-0"]["flavor"] == "h100"
