"""``yushan doctor``'s cluster checks: can Yushan work with this cluster, and if not, why not?

Three groups of checks, each reported as ok/failed with a human message rather than raised, so
one broken thing does not hide the others:

* **connection** — the API server answers (its version);
* **RBAC** — a SelfSubjectAccessReview for every (verb, resource, namespace) the adapter uses in
  the configured mode, so a missing permission is named before it fails a dispatch at 3 a.m.
  Reads are cluster-wide (the watch cache lists nodes, pods and Services everywhere); writes
  are checked in each tenant's namespace, which is all the chart grants with
  ``rbac.tenantNamespaces``; namespace creation only when the scheduler creates tenant
  namespaces (``config.createTenantNamespaces``). Exactly the chart's RBAC passes, in both modes
  (``tests/k8s/test_doctor.py``);
* **GPU nodes** — at least one node advertises allocatable ``nvidia.com/gpu``.

The server-side checks (server, token, database, scheduler, flavors) are the CLI's:
:mod:`cli.commands.doctor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from k8s.client import ClusterClient
from k8s.errors import ClusterError


@dataclass(frozen=True, slots=True)
class Permission:
    verb: str
    resource: str
    subresource: str = ""
    group: str = ""
    namespace: str | None = None
    """``None``: cluster-wide."""

    def __str__(self) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.verb} {resource}{where}"


CLUSTER_READS: tuple[Permission, ...] = (
    *(Permission(verb, "nodes") for verb in ("get", "list", "watch")),
    *(Permission(verb, "pods") for verb in ("list", "watch")),
    Permission("list", "services"),
)
"""What the watch cache reads everywhere."""

NAMESPACE_MANAGEMENT: tuple[Permission, ...] = (
    Permission("get", "namespaces"),
    Permission("create", "namespaces"),
)
"""Only when the scheduler creates tenant namespaces (``ClientOptions.create_namespaces``)."""


def tenant_writes(namespace: str) -> tuple[Permission, ...]:
    """What dispatching, cancelling and reading logs need in one tenant's namespace."""
    return (
        *(Permission(verb, "pods", namespace=namespace) for verb in ("create", "get", "delete")),
        Permission("get", "pods", "log", namespace=namespace),
        *(
            Permission(verb, "services", namespace=namespace)
            for verb in ("create", "get", "delete")
        ),
    )


def required_permissions(
    namespaces: Sequence[str] = (), *, create_namespaces: bool = True
) -> tuple[Permission, ...]:
    """The permissions the adapter needs for these tenant namespaces in this mode."""
    needed = [*CLUSTER_READS]
    if create_namespaces:
        needed += NAMESPACE_MANAGEMENT
    for namespace in sorted(set(namespaces)):
        needed += tenant_writes(namespace)
    return tuple(needed)


REQUIRED_PERMISSIONS = required_permissions(["default"])
"""The permissions checked when no tenant namespace is known: writes in ``default``."""


@dataclass(frozen=True, slots=True)
class DoctorCheck:
    name: str
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class DoctorReport:
    checks: tuple[DoctorCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def failures(self) -> tuple[DoctorCheck, ...]:
        return tuple(check for check in self.checks if not check.ok)


def check_connection(client: ClusterClient) -> DoctorCheck:
    try:
        version = client.server_version()
    except ClusterError as exc:
        return DoctorCheck("connection", False, f"API server not reachable: {exc}")
    return DoctorCheck("connection", True, f"API server {version}")


def check_permission(client: ClusterClient, permission: Permission) -> DoctorCheck:
    name = f"rbac: {permission}"
    try:
        allowed, reason = client.can_i(
            permission.verb,
            permission.resource,
            group=permission.group,
            subresource=permission.subresource,
            namespace=permission.namespace,
        )
    except ClusterError as exc:
        return DoctorCheck(name, False, f"access review failed: {exc}")
    if allowed:
        return DoctorCheck(name, True, "allowed")
    return DoctorCheck(name, False, f"denied{': ' + reason if reason else ''}")


def check_gpu_nodes(client: ClusterClient) -> DoctorCheck:
    try:
        nodes = client.list_nodes()
    except ClusterError as exc:
        return DoctorCheck("gpu nodes", False, f"cannot list nodes: {exc}")
    gpu_nodes = [n for n in nodes if n.allocatable.gpu > 0]
    if not gpu_nodes:
        return DoctorCheck("gpu nodes", False, f"none of {len(nodes)} nodes has allocatable GPUs")
    usable = [n for n in gpu_nodes if n.ready and not n.unschedulable]
    gpus = sum(n.allocatable.gpu for n in usable)
    flavors = sorted({n.flavor or "unlabelled" for n in gpu_nodes})
    message = (
        f"{len(gpu_nodes)} GPU nodes ({len(usable)} ready and schedulable), "
        f"{gpus} allocatable GPUs; flavors: {', '.join(flavors)}"
    )
    return DoctorCheck("gpu nodes", bool(usable), message)


def run_doctor(
    client: ClusterClient, permissions: Sequence[Permission] = REQUIRED_PERMISSIONS
) -> DoctorReport:
    """Run every check; skips the rest when the API server cannot be reached at all."""
    connection = check_connection(client)
    if not connection.ok:
        return DoctorReport((connection,))
    checks = [connection]
    checks += [check_permission(client, p) for p in permissions]
    checks.append(check_gpu_nodes(client))
    return DoctorReport(tuple(checks))
