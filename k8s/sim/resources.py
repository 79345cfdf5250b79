"""The resources the embedded API server serves and the discovery documents describing them.

Discovery answers the legacy (non-aggregated) shapes, ``APIVersions``, ``APIGroupList`` and
``APIResourceList``; kubectl falls back to them when the server does not offer aggregated
discovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SERVER_VERSION = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.0-yushan-sim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_READ = ("get", "list", "watch")
_ALL = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Resource:
    """One served resource type."""

    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    verbs: tuple[str, ...] = _ALL
    short_names: tuple[str, ...] = ()
    singular: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def display(self) -> str:
        """``pods`` or ``leases.coordination.k8s.io``, as Status messages name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        return entry


CORE = ""
COORDINATION = "coordination.k8s.io"
AUTHORIZATION = "authorization.k8s.io"

RESOURCES: tuple[Resource, ...] = (
    Resource("namespaces", "Namespace", CORE, "v1", False, short_names=("ns",)),
    Resource("nodes", "Node", CORE, "v1", False, short_names=("no",)),
    Resource("pods", "Pod", CORE, "v1", True, short_names=("po",)),
    Resource("services", "Service", CORE, "v1", True, short_names=("svc",)),
    Resource("events", "Event", CORE, "v1", True, short_names=("ev",)),
    Resource("bindings", "Binding", CORE, "v1", True, verbs=("create",)),
    Resource("leases", "Lease", COORDINATION, "v1", True),
    Resource(
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        AUTHORIZATION,
        "v1",
        False,
        verbs=("create",),
    ),
)

SUBRESOURCES: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "pods": (
        ("binding", "Binding", ("create",)),
        ("log", "Pod", ("get",)),
        ("status", "Pod", ("get", "patch")),
    ),
    "nodes": (("status", "Node", ("get", "patch")),),
}

_BY_PATH = {(resource.group, resource.plural): resource for resource in RESOURCES}


def lookup(group: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, plural))


def require(group: str, plural: str) -> Resource:
    return _BY_PATH[(group, plural)]


def group_versions() -> list[tuple[str, str]]:
    return sorted({(r.group, r.version) for r in RESOURCES if r.group})


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def _group(group: str, version: str) -> dict[str, Any]:
    group_version = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [group_version], "preferredVersion": group_version}


def api_group_list() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(group, version) for group, version in group_versions()],
    }


def api_group(group: str) -> dict[str, Any] | None:
    for known, version in group_versions():
        if known == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, version)}
    return None


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    entries: list[dict[str, Any]] = []
    for resource in served:
        entries.append(resource.discovery())
        for sub, kind, verbs in SUBRESOURCES.get(resource.plural, ()):
            entries.append(
                {
                    "name": f"{resource.plural}/{sub}",
                    "singularName": "",
                    "namespaced": resource.namespaced,
                    "kind": kind,
                    "verbs": list(verbs),
                }
            )
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }
