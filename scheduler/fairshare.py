"""The fair-share tree, like Slurm's ``sshare``: cohort -> tenant -> user, with what each is
entitled to and what it used.

Pure: it reads a :class:`~scheduler.model.Snapshot` (quotas, running jobs, decayed usage) and
computes, per node of the tree:

* **nominal** GPUs (a tenant's guaranteed quota summed over flavors; a cohort's, its tenants');
* **GPUs** its admitted and running jobs hold now, and how many of them are **borrowed** (above
  the nominal quota of their flavor);
* its **share**: the entitlement the scheduler orders tenants by — weight x nominal GPUs as a
  fraction of all tenants' (weights alone when nobody has GPU quota). :func:`fair_shares` is
  the one definition, also used by :meth:`scheduler.state.SchedulingState.entitlement`. A
  cohort's share is its tenants' sum; inside a tenant users are ordered by their own usage
  alone, so each user counts for an equal part of the tenant's share;
* its decayed past **usage** (GPU-seconds, as the loop stores it) and the **usage ratio**: its
  fraction of all usage divided by its share (the ``tenant_usage_ratio`` ordering factor; above
  1 it used more than its share lately and waits behind tenants below 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from scheduler.model import GPU, CohortSpec, JobState, Snapshot, TenantSpec

Kind = Literal["cohort", "tenant", "user"]


@dataclass(frozen=True, slots=True)
class ShareRow:
    kind: Kind
    name: str
    parent: str | None
    depth: int
    weight: float | None
    nominal_gpus: int | None
    gpus: int
    borrowed_gpus: int | None
    share: float
    usage_gpu_seconds: float
    usage_ratio: float | None


def fair_shares(tenants: Mapping[str, TenantSpec]) -> dict[str, float]:
    """Each tenant's weight x nominal GPUs as a fraction of all tenants' (weights if none)."""
    raw = {name: spec.weight * nominal_gpus(spec) for name, spec in tenants.items()}
    if sum(raw.values()) <= 0:
        raw = {name: spec.weight for name, spec in tenants.items()}
    total = sum(raw.values()) or 1.0
    return {name: max(value / total, 1e-9) for name, value in raw.items()}


def nominal_gpus(spec: TenantSpec) -> int:
    return sum(limits.nominal for (_, resource), limits in spec.quotas.items() if resource == GPU)


def _held(running: tuple[JobState, ...]) -> dict[tuple[str, str, str], int]:
    """GPUs held per (tenant, user, flavor)."""
    held: dict[tuple[str, str, str], int] = {}
    for job in running:
        key = (job.tenant, job.user, job.flavor)
        held[key] = held.get(key, 0) + job.demand.gpu * job.workers
    return held


def share_tree(snapshot: Snapshot) -> list[ShareRow]:
    """The rows depth first: each cohort, its child cohorts and tenants, each tenant's users
    (those holding GPUs or with recorded usage); tenants without a cohort last."""
    shares = fair_shares(snapshot.tenants)
    held = _held(snapshot.running)
    total_usage = sum(snapshot.usage.tenants.values())
    tenant_rows: dict[str, list[ShareRow]] = {}
    for name, spec in snapshot.tenants.items():
        tenant_rows[name] = _tenant_rows(spec, shares[name], held, snapshot, total_usage)
    children: dict[str | None, list[CohortSpec]] = {}
    for cohort in snapshot.cohorts.values():
        children.setdefault(cohort.parent, []).append(cohort)
    rows: list[ShareRow] = []
    for root in sorted(children.get(None, []), key=lambda c: c.name):
        rows += _cohort_rows(root, 0, children, snapshot.tenants, tenant_rows, total_usage)
    for name in sorted(n for n, spec in snapshot.tenants.items() if spec.cohort is None):
        rows += tenant_rows[name]
    return rows


def _ratio(usage: float, total_usage: float, share: float) -> float | None:
    return None if total_usage <= 0 else usage / total_usage / share


def _tenant_rows(
    spec: TenantSpec,
    share: float,
    held: Mapping[tuple[str, str, str], int],
    snapshot: Snapshot,
    total_usage: float,
) -> list[ShareRow]:
    gpus_by_flavor: dict[str, int] = {}
    gpus_by_user: dict[str, int] = {}
    for (tenant, user, flavor), gpus in held.items():
        if tenant == spec.name:
            gpus_by_flavor[flavor] = gpus_by_flavor.get(flavor, 0) + gpus
            gpus_by_user[user] = gpus_by_user.get(user, 0) + gpus
    nominal = {flavor: q.nominal for (flavor, res), q in spec.quotas.items() if res == GPU}
    borrowed = sum(max(0, gpus - nominal.get(f, 0)) for f, gpus in gpus_by_flavor.items())
    usage = snapshot.usage.tenants.get(spec.name, 0.0)
    users = sorted(
        set(gpus_by_user) | {user for (tenant, user) in snapshot.usage.users if tenant == spec.name}
    )
    depth = 0  # a cohort listing the tenant moves it and its users down (_at_depth)
    rows = [
        ShareRow(
            "tenant",
            spec.name,
            spec.cohort,
            depth,
            spec.weight,
            sum(nominal.values()),
            sum(gpus_by_flavor.values()),
            borrowed,
            share,
            usage,
            _ratio(usage, total_usage, share),
        )
    ]
    for user in users:
        user_usage = snapshot.usage.users.get((spec.name, user), 0.0)
        user_share = share / len(users)
        rows.append(
            ShareRow(
                "user",
                user,
                spec.name,
                depth + 1,
                None,
                None,
                gpus_by_user.get(user, 0),
                None,
                user_share,
                user_usage,
                _ratio(user_usage, total_usage, user_share),
            )
        )
    return rows


def _cohort_rows(
    cohort: CohortSpec,
    depth: int,
    children: Mapping[str | None, list[CohortSpec]],
    tenants: Mapping[str, TenantSpec],
    tenant_rows: Mapping[str, list[ShareRow]],
    total_usage: float,
) -> list[ShareRow]:
    below: list[ShareRow] = []
    for child in sorted(children.get(cohort.name, []), key=lambda c: c.name):
        below += _cohort_rows(child, depth + 1, children, tenants, tenant_rows, total_usage)
    for name in sorted(n for n, spec in tenants.items() if spec.cohort == cohort.name):
        below += [_at_depth(row, depth + 1) for row in tenant_rows[name]]
    members = [row for row in below if row.depth == depth + 1 and row.kind != "user"]
    share = sum(row.share for row in members)
    usage = sum(row.usage_gpu_seconds for row in members)
    head = ShareRow(
        "cohort",
        cohort.name,
        cohort.parent,
        depth,
        None,
        sum(row.nominal_gpus or 0 for row in members),
        sum(row.gpus for row in members),
        sum(row.borrowed_gpus or 0 for row in members),
        share,
        usage,
        _ratio(usage, total_usage, share) if share > 0 else None,
    )
    return [head, *below]


def _at_depth(row: ShareRow, tenant_depth: int) -> ShareRow:
    depth = tenant_depth if row.kind == "tenant" else tenant_depth + 1
    return ShareRow(
        row.kind,
        row.name,
        row.parent,
        depth,
        row.weight,
        row.nominal_gpus,
        row.gpus,
        row.borrowed_gpus,
        row.share,
        row.usage_gpu_seconds,
        row.usage_ratio,
    )
