"""``yushan doctor`` checks: connection, RBAC per verb, GPU nodes — failures named, not raised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from k8s.client import ClientOptions, ClusterClient
from k8s.doctor import REQUIRED_PERMISSIONS, Permission, required_permissions, run_doctor
from k8s.errors import RetryPolicy
from k8s.sim import EmbeddedCluster
from k8s.sim.rbac import RbacAuthorizer
from k8s.transport import TransportOptions
from tests.chart.rendering import NAMESPACE, RELEASE, render
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
    assert "rbac: get pods/log in default" in reviewed
    assert report.ok


def test_writes_are_checked_only_in_tenant_namespaces() -> None:
    permissions = required_permissions(["yushan-lab-b", "yushan-lab-a"], create_namespaces=False)
    writes = [p for p in permissions if p.verb in ("create", "delete")]
    assert {p.namespace for p in writes} == {"yushan-lab-a", "yushan-lab-b"}
    assert all(p.resource != "namespaces" for p in permissions)
    managed = required_permissions(["yushan-lab-a"], create_namespaces=True)
    assert Permission("create", "namespaces") in managed


@pytest.mark.parametrize(
    ("values", "create_namespaces"),
    [
        ({}, True),
        ({"rbac": {"tenantNamespaces": ["yushan-lab-a"]}}, False),
    ],
    ids=["cluster-wide", "tenant-namespaces"],
)
def test_exactly_the_charts_rbac_passes_in_each_mode(
    tmp_path: Path, values: dict[str, Any], create_namespaces: bool
) -> None:
    """The chart's Roles as the embedded cluster's authorizer: the doctor asks only for what the
    mode needs, so it passes; a tenant namespace the chart does not list fails by name."""
    rendering = render({"config": {"createTenantNamespaces": create_namespaces}, **values})
    authorizer = RbacAuthorizer.from_objects(rendering.manifests, RELEASE, NAMESPACE)
    with EmbeddedCluster(authorizer=authorizer) as cluster:
        authorizer.enforcing = True
        path = cluster.write_kubeconfig(tmp_path / "config")
        with ClusterClient.from_kubeconfig(path) as client:
            wanted = required_permissions(["yushan-lab-a"], create_namespaces=create_namespaces)
            assert run_doctor(client, wanted).ok
            other = required_permissions(["yushan-lab-z"], create_namespaces=create_namespaces)
            failures = [c.name for c in run_doctor(client, other).failures()]
    if values:
        assert "rbac: create pods in yushan-lab-z" in failures
    else:
        assert failures == []


def test_denied_permissions_are_named(embedded: EmbeddedCluster) -> None:
    client = DenyingClient(embedded.api_client(), TEST_OPTIONS)
    report = run_doctor(client)
    assert not report.ok
    assert [(c.name, c.message) for c in report.failures()] == [
        ("rbac: watch nodes", "denied: no RBAC policy matched"),
        ("rbac: delete pods in default", "denied: no RBAC policy matched"),
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
