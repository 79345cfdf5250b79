"""``yushan doctor`` checks: connection, RBAC per verb, GPU nodes — failures named, not raised."""

from __future__ import annotations

from pathlib import Path

import yaml

from k8s.client import ClientOptions, ClusterClient
from k8s.doctor import REQUIRED_PERMISSIONS, run_doctor
from k8s.errors import RetryPolicy
from k8s.sim import EmbeddedCluster
from k8s.transport import TransportOptions
from tests.k8s.conftest import TEST_OPTIONS
from tests.k8s.helpers import dead_kubeconfig


class DenyingClient(ClusterClient):
    """The embedded cluster allows everything; this client's RBAC answers deny some verbs."""

    denied: frozenset[tuple[str, str]] = frozenset({("delete", "pods"), ("watch", "nodes")})

    def can_i(
        self,
        verb: str,
        resource: str,
        *,
        group: str = "",
        subresource: str = "",
        namespace: str | None = None,
    ) -> tuple[bool, str]:
        if (verb, resource) in self.denied:
            return False, "no RBAC policy matched"
        return super().can_i(
            verb, resource, group=group, subresource=subresource, namespace=namespace
        )


def test_every_required_permission_is_reviewed(embedded_client: ClusterClient) -> None:
    report = run_doctor(embedded_client)
    reviewed = [c.name for c in report.checks if c.name.startswith("rbac: ")]
    assert reviewed == [f"rbac: {p}" for p in REQUIRED_PERMISSIONS]
    assert "rbac: get pods/log" in reviewed
    assert report.ok


def test_denied_permissions_are_named(embedded: EmbeddedCluster) -> None:
    client = DenyingClient(embedded.api_client(), TEST_OPTIONS)
    report = run_doctor(client)
    assert not report.ok
    assert [(c.name, c.message) for c in report.failures()] == [
        ("rbac: delete pods", "denied: no RBAC policy matched"),
        ("rbac: watch nodes", "denied: no RBAC policy matched"),
    ]


def test_gpu_nodes_are_counted(embedded_client: ClusterClient) -> None:
    gpu_check = run_doctor(embedded_client).checks[-1]
    assert gpu_check.ok
    assert gpu_check.message.startswith("8 GPU nodes (8 ready and schedulable), 64 allocatable")
    assert "flavors: h100, v100" in gpu_check.message


def test_a_cluster_without_gpus_fails_the_gpu_check(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(yaml.safe_dump({"nodes": [{"name": "cpu", "count": 2}]}))
    with EmbeddedCluster(nodes_file=nodes) as cluster:
        report = run_doctor(ClusterClient(cluster.api_client(), TEST_OPTIONS))
    assert [(c.name, c.message) for c in report.failures()] == [
        ("gpu nodes", "none of 2 nodes has allocatable GPUs")
    ]


def test_an_unreachable_cluster_fails_the_connection_check_only(tmp_path: Path) -> None:
    options = ClientOptions(
        transport=TransportOptions(retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    )
    with ClusterClient.from_kubeconfig(dead_kubeconfig(tmp_path), options=options) as client:
        report = run_doctor(client)
    assert [c.name for c in report.checks] == ["connection"]
    assert not report.ok
    assert "not reachable" in report.checks[0].message
