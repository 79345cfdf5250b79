"""Nodes from YAML and the discovery documents, through the official client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from k8s.sim import ClusterConfigError, EmbeddedCluster, load_node_specs

FLAVORS = [
    ("h100", "NVIDIA-H100-80GB-HBM3", "96"),
    ("v100", "Tesla-V100-SXM2-32GB", "48"),
]


@pytest.mark.parametrize(("flavor", "product", "cpu"), FLAVORS)
def test_default_cluster_has_four_eight_gpu_nodes_per_flavor(
    core: Any, flavor: str, product: str, cpu: str
) -> None:
    nodes = core.list_node(label_selector=f"yushan.io/flavor={flavor}").items

    assert [node.metadata.name for node in nodes] == [f"{flavor}-{i}" for i in range(4)]
    for node in nodes:
        assert node.status.allocatable["nvidia.com/gpu"] == "8"
        assert node.status.capacity["cpu"] == cpu
        assert node.metadata.labels["nvidia.com/gpu.product"] == product
        assert "topology.yushan.io/block" in node.metadata.labels
        assert node.spec.taints[0].key == "nvidia.com/gpu"
        assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]


def test_nodes_file_groups_expand_by_count_and_start(tmp_path: Path) -> None:
    nodes_file = tmp_path / "nodes.yaml"
    nodes_file.write_text(
        "nodes:\n"
        "  - {name: a100, count: 2, start: 4, gpus: 4, cpu: '64', memory: 512Gi}\n"
        "  - {name: cpu-only, ready: false}\n"
    )
    with EmbeddedCluster(nodes_file) as cluster:
        nodes = {node["metadata"]["name"]: node for node in cluster.nodes()}

    assert sorted(nodes) == ["a100-4", "a100-5", "cpu-only"]
    assert nodes["a100-5"]["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert nodes["cpu-only"]["status"]["conditions"][0]["status"] == "False"


@pytest.mark.parametrize(
    "content",
    [
        "not a mapping",
        "nodes: [{count: 2}]",
        "nodes: [{name: x, colour: red}]",
        "nodes: [{name: x, cpu: lots}]",
        "nodes: [{name: x}, {name: x}]",
    ],
)
def test_invalid_nodes_file_is_rejected(tmp_path: Path, content: str) -> None:
    nodes_file = tmp_path / "nodes.yaml"
    nodes_file.write_text(content)

    with pytest.raises(ClusterConfigError):
        load_node_specs(nodes_file)


def test_discovery_and_version_endpoints(api_client: Any) -> None:
    version = client.VersionApi(api_client).get_code()
    core_resources = client.CoreV1Api(api_client).get_api_resources()
    groups = client.ApisApi(api_client).get_api_versions()
    coordination = client.CoordinationV1Api(api_client).get_api_resources()

    assert version.major == "1"
    served = {resource.name for resource in core_resources.resources}
    assert {"pods", "pods/binding", "pods/log", "nodes", "namespaces", "services"} <= served
    assert {group.name for group in groups.groups} == {
        "coordination.k8s.io",
        "authorization.k8s.io",
    }
    assert [resource.name for resource in coordination.resources] == ["leases"]


@pytest.mark.parametrize(
    "path", ["/api/v1/widgets", "/apis/example.com/v1", "/api/v1/nodes/h100-0/debug"]
)
def test_unknown_path_is_a_not_found_status(cluster: EmbeddedCluster, path: str) -> None:
    response = httpx.get(cluster.url + path)

    assert response.status_code == 404
    assert response.json()["kind"] == "Status"
    assert response.json()["reason"] == "NotFound"
