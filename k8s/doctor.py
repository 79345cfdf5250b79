"""``yushan doctor``: can Yushan work with this cluster, and if not, why not?

Three groups of checks, each reported as ok/failed with a human message rather than raised, so
one broken thing does not hide the others:

* **connection** — the API server answers (its version);
* **RBAC** — a SelfSubjectAccessReview for every (verb, resource) the adapter uses, so a missing
  permission is named before it fails a dispatch at 3 a.m.;
* **GPU nodes** — at least one node advertises allocatable ``nvidia.com/gpu``.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8s.client import ClusterClient
from k8s.errors import ClusterError


@dataclass(frozen=True, slots=True)
class Permission:
    verb: str
    resource: str
    subresource: str = ""
    group: str = ""

    def __str__(self) -> str:
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {resource}"


REQUIRED_PERMISSIONS: tuple[Permission, ...] = (
    *(Permission(verb, "pods") for verb in ("create", "get", "list", "watch", "delete")),
    Permission("get", "pods", "log"),
    *(Permission(verb, "services") for verb in ("create", "get", "list", "delete")),
    *(Permission(verb, "nodes") for verb in ("get", "list", "watch")),
    *(Permission(verb, "namespaces") for verb in ("get", "create")),
)
"""Everything the adapter calls; namespace creation is only needed if tenants' namespaces are
not pre-provisioned (``ClientOptions.create_namespaces``)."""


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


def run_doctor(client: ClusterClient) -> DoctorReport:
    """Run every check; skips the rest when the API server cannot be reached at all."""
    connection = check_connection(client)
    if not connection.ok:
        return DoctorReport((connection,))
    checks = [connection]
    checks += [check_permission(client, p) for p in REQUIRED_PERMISSIONS]
    checks.append(check_gpu_nodes(client))
    return DoctorReport(tuple(checks))
