"""The cohort tree: nominal quotas, borrowing and lending with Kueue's semantics.

Tenants (Kueue ClusterQueues) are leaves; cohorts are inner nodes and may carry quotas of their
own. Every node keeps, per (flavor, resource):

* ``subtree_quota`` — its own nominal plus what its children put at its disposal;
* ``usage`` — for a tenant what its jobs hold, for a cohort what its children use beyond the part
  they keep for themselves;
* ``guaranteed`` — the part of its subtree quota it does not lend: ``subtree - lending_limit``.

A child contributes ``subtree - guaranteed`` to its parent's pool and charges the parent only for
usage beyond ``guaranteed``. What a node may still use is what is left of its guaranteed part plus
what its parent has available, the latter capped by the node's borrowing limit (which bounds how
far the whole subtree goes above its own quota). This is the recursion of Kueue's hierarchical
cohorts; the digest's worked examples are in ``tests/quotas``.

A (flavor, resource) that no node of the tree mentions is not limited by quota at all (only by
capacity); one mentioned somewhere counts as nominal 0 for nodes that do not list it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from quotas.drf import borrowed_share
from quotas.errors import QuotaTreeError

FlavorResource = tuple[str, str]
UNLIMITED = 2**62
"""What :meth:`QuotaTree.available` reports for a (flavor, resource) no quota mentions."""


class Limits(Protocol):
    """Quota of one (flavor, resource); ``None`` limits are unlimited."""

    @property
    def nominal(self) -> int: ...

    @property
    def borrowing_limit(self) -> int | None: ...

    @property
    def lending_limit(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A tenant or a cohort as the quota tree needs it."""

    name: str
    parent: str | None
    quotas: Mapping[FlavorResource, Limits] = field(default_factory=dict)
    weight: float = 1.0


class _Node:
    __slots__ = ("children", "guaranteed", "name", "parent", "quotas", "subtree", "usage", "weight")

    def __init__(self, name: str, quotas: Mapping[FlavorResource, Limits], weight: float) -> None:
        self.name = name
        self.quotas = quotas
        self.weight = weight
        self.parent: _Node | None = None
        self.children: list[_Node] = []
        self.subtree: dict[FlavorResource, int] = {}
        self.guaranteed: dict[FlavorResource, int] = {}
        self.usage: dict[FlavorResource, int] = {}

    def borrowing_limit(self, fr: FlavorResource) -> int | None:
        limits = self.quotas.get(fr)
        return None if limits is None else limits.borrowing_limit


class QuotaTree:
    """Quota accounting for a set of tenants under a tree of cohorts."""

    def __init__(self, cohorts: Iterable[NodeSpec], tenants: Iterable[NodeSpec]) -> None:
        self._cohorts: dict[str, _Node] = {}
        self._tenants: dict[str, _Node] = {}
        cohort_specs = list(cohorts)
        tenant_specs = list(tenants)
        for spec in cohort_specs:
            _insert_unique(self._cohorts, spec, "cohort")
        for spec in tenant_specs:
            _insert_unique(self._tenants, spec, "tenant")
        for specs, table in ((cohort_specs, self._cohorts), (tenant_specs, self._tenants)):
            for spec in specs:
                if spec.parent is not None:
                    self._link(table[spec.name], spec.parent)
        self._check_acyclic()
        self.limited: frozenset[FlavorResource] = frozenset(
            fr for node in self._all_nodes() for fr in node.quotas
        )
        for root in self._roots():
            self._compute_subtree(root)
        self._lendable_cache: dict[str, dict[str, int]] = {}
        self._borrowing: dict[str, set[str]] = {}
        """Per flavor, the tenants using more than their nominal quota of some resource."""
        self._potential_cache: dict[tuple[str, FlavorResource], int] = {}
        self._cohort_available: dict[tuple[str, FlavorResource], int] = {}
        """What each cohort has available; valid until the next usage change."""

    # -- structure -------------------------------------------------------------------------

    def _link(self, node: _Node, parent_name: str) -> None:
        parent = self._cohorts.get(parent_name)
        if parent is None:
            raise QuotaTreeError(f"{node.name!r} names unknown cohort {parent_name!r}")
        node.parent = parent
        parent.children.append(node)

    def _all_nodes(self) -> list[_Node]:
        return [*self._cohorts.values(), *self._tenants.values()]

    def _roots(self) -> list[_Node]:
        return [node for node in self._all_nodes() if node.parent is None]

    def _check_acyclic(self) -> None:
        for node in self._cohorts.values():
            seen: set[str] = set()
            current: _Node | None = node
            while current is not None:
                if current.name in seen:
                    raise QuotaTreeError(f"cohort cycle through {current.name!r}")
                seen.add(current.name)
                current = current.parent

    def _compute_subtree(self, node: _Node) -> None:
        for child in node.children:
            self._compute_subtree(child)
        for fr in self.limited:
            own = node.quotas[fr].nominal if fr in node.quotas else 0
            from_children = sum(c.subtree[fr] - c.guaranteed[fr] for c in node.children)
            node.subtree[fr] = own + from_children
            lending = node.quotas[fr].lending_limit if fr in node.quotas else None
            node.guaranteed[fr] = 0 if lending is None else max(0, node.subtree[fr] - lending)
            node.usage[fr] = 0

    def tenant_names(self) -> list[str]:
        return list(self._tenants)

    def has_tenant(self, tenant: str) -> bool:
        return tenant in self._tenants

    def parent_of(self, tenant: str) -> str | None:
        parent = self._tenants[tenant].parent
        return None if parent is None else parent.name

    def root_of(self, tenant: str) -> str:
        node = self._tenants[tenant]
        while node.parent is not None:
            node = node.parent
        return node.name

    def weight(self, tenant: str) -> float:
        return self._tenants[tenant].weight

    # -- usage -----------------------------------------------------------------------------

    def usage(self, tenant: str, fr: FlavorResource) -> int:
        return self._tenants[tenant].usage.get(fr, 0)

    def nominal(self, tenant: str, fr: FlavorResource) -> int:
        return self._tenants[tenant].subtree.get(fr, 0)

    def add(self, tenant: str, request: Mapping[FlavorResource, int]) -> None:
        """Charge ``request`` to ``tenant`` and, beyond what each level keeps, to its cohorts."""
        self._change(tenant, request, 1)

    def remove(self, tenant: str, request: Mapping[FlavorResource, int]) -> None:
        self._change(tenant, request, -1)

    def _change(self, tenant: str, request: Mapping[FlavorResource, int], sign: int) -> None:
        self._cohort_available.clear()
        leaf = self._tenants[tenant]
        for fr, amount in request.items():
            if fr not in self.limited or amount == 0:
                continue
            self._track_borrowing(leaf, fr, sign * amount)
            node: _Node | None = leaf
            delta = sign * amount
            while node is not None and delta != 0:
                old = node.usage[fr]
                new = old + delta
                node.usage[fr] = new
                kept = node.guaranteed[fr]
                delta = max(0, new - kept) - max(0, old - kept)
                node = node.parent

    def _track_borrowing(self, leaf: _Node, fr: FlavorResource, delta: int) -> None:
        borrowing_before = any(
            leaf.usage[other] > leaf.subtree[other] for other in self.limited if other[0] == fr[0]
        )
        borrowing_after = leaf.usage[fr] + delta > leaf.subtree[fr] or any(
            leaf.usage[other] > leaf.subtree[other]
            for other in self.limited
            if other[0] == fr[0] and other != fr
        )
        if borrowing_before != borrowing_after:
            tenants = self._borrowing.setdefault(fr[0], set())
            if borrowing_after:
                tenants.add(leaf.name)
            else:
                tenants.discard(leaf.name)

    def borrowers(self, flavor: str) -> frozenset[str]:
        """Tenants currently above their nominal quota of some resource of ``flavor``."""
        return frozenset(self._borrowing.get(flavor, ()))

    # -- what may still be used ------------------------------------------------------------

    def available(self, tenant: str, fr: FlavorResource) -> int:
        """How much more of ``fr`` the tenant may use now (Kueue's ``available``)."""
        if fr not in self.limited:
            return UNLIMITED
        return max(0, self._leaf_available(self._tenants[tenant], fr))

    def potential(self, tenant: str, fr: FlavorResource) -> int:
        """The most the tenant could use if nobody else used anything."""
        if fr not in self.limited:
            return UNLIMITED
        key = (tenant, fr)
        cached = self._potential_cache.get(key)
        if cached is None:
            cached = self._potential_cache[key] = _potential(self._tenants[tenant], fr)
        return cached

    def fits(self, tenant: str, request: Mapping[FlavorResource, int]) -> bool:
        leaf = self._tenants[tenant]
        return all(
            fr not in self.limited or amount <= self._leaf_available(leaf, fr)
            for fr, amount in request.items()
        )

    def within_nominal(self, tenant: str, request: Mapping[FlavorResource, int]) -> bool:
        leaf = self._tenants[tenant]
        return all(
            fr not in self.limited or leaf.usage[fr] + amount <= leaf.subtree[fr]
            for fr, amount in request.items()
        )

    def is_borrowing(self, tenant: str, flavor: str | None = None) -> bool:
        if flavor is not None:
            return tenant in self._borrowing.get(flavor, ())
        return any(tenant in tenants for tenants in self._borrowing.values())

    def lent_by_cohort(self, tenant: str, fr: FlavorResource) -> int:
        """The part of :meth:`available` that comes from the cohort rather than own quota."""
        leaf = self._tenants[tenant]
        own = max(0, leaf.subtree.get(fr, 0) - leaf.usage.get(fr, 0))
        return max(0, self.available(tenant, fr) - own)

    # -- fair sharing ----------------------------------------------------------------------

    def lendable(self, tenant: str) -> dict[str, int]:
        """Per resource, summed over flavors, what the tenant's parent could lend at most."""
        cached = self._lendable_cache.get(tenant)
        if cached is None:
            parent = self._tenants[tenant].parent
            cached = {}
            if parent is not None:
                for fr in self.limited:
                    cached[fr[1]] = cached.get(fr[1], 0) + _potential(parent, fr)
            self._lendable_cache[tenant] = cached
        return cached

    def borrowed(
        self, tenant: str, request: Mapping[FlavorResource, int] | None = None
    ) -> dict[str, int]:
        """Per resource, how much the tenant uses beyond its quota (with ``request`` added)."""
        leaf = self._tenants[tenant]
        request = request or {}
        result: dict[str, int] = {}
        for fr in self.limited:
            over = leaf.usage[fr] + request.get(fr, 0) - leaf.subtree[fr]
            if over > 0:
                result[fr[1]] = result.get(fr[1], 0) + over
        return result

    def share(self, tenant: str, request: Mapping[FlavorResource, int] | None = None) -> float:
        """Kueue's DRS of the tenant, optionally with an incoming request."""
        if self._tenants[tenant].parent is None:
            return 0.0
        return borrowed_share(
            self.borrowed(tenant, request), self.lendable(tenant), self.weight(tenant)
        )

    def violations(self, tenants: Iterable[str] | None = None) -> list[tuple[str, FlavorResource]]:
        """(tenant, flavor-resource) pairs whose usage exceeds what the tree permits."""
        names = self._tenants if tenants is None else tenants
        return [
            (name, fr)
            for name in names
            for fr in self.limited
            if self._leaf_available(self._tenants[name], fr) < 0
        ]

    def _leaf_available(self, leaf: _Node, fr: FlavorResource) -> int:
        parent = leaf.parent
        if parent is None:
            return leaf.subtree[fr] - leaf.usage[fr]
        key = (parent.name, fr)
        from_parent = self._cohort_available.get(key)
        if from_parent is None:
            from_parent = _available(parent, fr)
            self._cohort_available[key] = from_parent
        return _with_parent(leaf, fr, from_parent)


def _insert_unique(table: dict[str, _Node], spec: NodeSpec, kind: str) -> None:
    if spec.name in table:
        raise QuotaTreeError(f"duplicate {kind} {spec.name!r}")
    if spec.weight < 0:
        raise QuotaTreeError(f"{kind} {spec.name!r} has a negative weight")
    table[spec.name] = _Node(spec.name, spec.quotas, spec.weight)


def _available(node: _Node, fr: FlavorResource) -> int:
    parent = node.parent
    if parent is None:
        return node.subtree[fr] - node.usage[fr]
    return _with_parent(node, fr, _available(parent, fr))


def _with_parent(node: _Node, fr: FlavorResource, from_parent: int) -> int:
    """Kueue's ``available`` of a non-root node given what its parent has available."""
    kept = node.guaranteed[fr]
    local = max(0, kept - node.usage[fr])
    limit = node.borrowing_limit(fr)
    if limit is not None:
        in_parent = node.subtree[fr] - kept
        used_in_parent = max(0, node.usage[fr] - kept)
        from_parent = min(from_parent, in_parent - used_in_parent + limit)
    return local + from_parent


def _potential(node: _Node, fr: FlavorResource) -> int:
    parent = node.parent
    if parent is None:
        return node.subtree[fr]
    result = node.guaranteed[fr] + _potential(parent, fr)
    limit = node.borrowing_limit(fr)
    if limit is not None:
        result = min(result, node.subtree[fr] + limit)
    return result
