"""Optional RBAC enforcement for the embedded API server.

By default the embedded cluster allows everything. Given an :class:`RbacAuthorizer` built from
RBAC objects (for instance the Helm chart's rendered ClusterRoles, Roles and bindings) and the
ServiceAccount the client acts as, every request is checked like the real authorizer does:
rules of ClusterRoles bound by a ClusterRoleBinding apply in every namespace and to
cluster-scoped resources; rules bound by a RoleBinding apply only in the binding's namespace.
A denied request answers 403 and is remembered in :attr:`RbacAuthorizer.denied`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rule:
    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]

    def allows(self, verb: str, group: str, resource: str) -> bool:
        return (
            (group in self.groups or "*" in self.groups)
            and (resource in self.resources or "*" in self.resources)
            and (verb in self.verbs or "*" in self.verbs)
        )


def _rules(role: Mapping[str, Any]) -> list[Rule]:
    return [
        Rule(
            frozenset(rule.get("apiGroups") or ()),
            frozenset(rule.get("resources") or ()),
            frozenset(rule.get("verbs") or ()),
        )
        for rule in role.get("rules") or ()
    ]


class RbacAuthorizer:
    """Decides requests of one ServiceAccount from a set of RBAC objects."""

    def __init__(self, cluster_wide: Iterable[Rule], by_namespace: Mapping[str, list[Rule]]):
        self.cluster_wide = list(cluster_wide)
        self.by_namespace = {ns: list(rules) for ns, rules in by_namespace.items()}
        self.denied: list[tuple[str, str, str, str | None]] = []
        self.enforcing = True
        """Set to ``False`` to act as a cluster admin (test set-up), ``True`` to enforce."""
        self._lock = threading.Lock()

    @classmethod
    def from_objects(
        cls, objects: Iterable[Mapping[str, Any]], service_account: str, namespace: str
    ) -> RbacAuthorizer:
        objects = list(objects)
        cluster_roles = {
            o["metadata"]["name"]: _rules(o) for o in objects if o["kind"] == "ClusterRole"
        }
        roles = {
            (o["metadata"]["namespace"], o["metadata"]["name"]): _rules(o)
            for o in objects
            if o["kind"] == "Role"
        }
        subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
        cluster_wide: list[Rule] = []
        by_namespace: dict[str, list[Rule]] = {}
        for binding in objects:
            if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
                continue
            if not any(
                all(s.get(k) == v for k, v in subject.items())
                for s in binding.get("subjects") or ()
            ):
                continue
            ref = binding["roleRef"]
            if binding["kind"] == "ClusterRoleBinding":
                cluster_wide += cluster_roles.get(ref["name"], [])
                continue
            bound_in = binding["metadata"]["namespace"]
            if ref["kind"] == "ClusterRole":
                rules = cluster_roles.get(ref["name"], [])
            else:
                rules = roles.get((bound_in, ref["name"]), [])
            by_namespace.setdefault(bound_in, []).extend(rules)
        return cls(cluster_wide, by_namespace)

    def would_allow(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        """The decision, without recording a denial (SelfSubjectAccessReviews)."""
        rules = self.cluster_wide
        if namespace is not None:
            rules = rules + self.by_namespace.get(namespace, [])
        return any(rule.allows(verb, group, resource) for rule in rules)

    def allows(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        """``resource`` is the plural, with ``/subresource`` when there is one."""
        if not self.enforcing:
            return True
        allowed = self.would_allow(verb, group, resource, namespace)
        if not allowed:
            with self._lock:
                self.denied.append((verb, group, resource, namespace))
        return allowed
