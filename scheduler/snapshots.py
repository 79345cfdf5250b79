"""Building the cycle's :class:`~scheduler.model.Snapshot` from the store and the cluster.

This is the only place that knows both the database rows and the cycle's value types. It reads
everything the cycle needs in one transaction so the snapshot is consistent: quotas, tenants,
cohorts, queued and active jobs (with their checkpoint interval and the evictions of the last
24 hours, both read from the job rows themselves), decayed usage, and the queue controls (stopped
tenants and flavors, per-user limits, the status of every job a queued job depends on).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from scheduler.model import (
    CohortSpec,
    Condition,
    Credit,
    Demand,
    Dependency,
    FlavorResource,
    JobState,
    NodeState,
    Priority,
    QueueControls,
    QuotaLimits,
    Snapshot,
    StopPolicy,
    TenantSpec,
    UsageState,
    UserLimits,
)
from store import cluster, jobs, tenants
from store import controls as control_store
from store import wallets as wallet_store
from store.common import as_utc_or_none
from store.models import Job, Node, Tenant
from store.tenants import COHORT, TENANT, Limits

PREEMPTING = "Preempting"
PRIORITY_BY_NAME = {"low": Priority.LOW, "normal": Priority.NORMAL, "high": Priority.HIGH}


def _timestamp(value: datetime | None) -> float | None:
    value = as_utc_or_none(value)
    return None if value is None else value.timestamp()


def job_state(job: Job, now: float | None = None) -> JobState:
    """The cycle's view of a job row; ``evicted_at`` keeps the evictions of the 24 hours before
    ``now`` (all those stored when ``now`` is ``None``)."""
    submitted = _timestamp(job.created_at)
    assert submitted is not None
    evicted = (
        jobs.recent_evictions(job, now)
        if now is not None
        else sorted(float(t) for t in job.evicted_at or ())
    )
    return JobState(
        id=job.id,
        tenant=job.tenant,
        user=job.user,
        flavor=job.flavor,
        workers=job.workers,
        demand=Demand(job.gpus, job.cpu_milli, job.memory_bytes),
        priority=PRIORITY_BY_NAME[job.priority],
        submitted_at=submitted,
        max_runtime_seconds=job.max_runtime_seconds,
        admitted_at=_timestamp(job.admitted_at),
        placement=tuple(job.placement) if job.placement else None,
        attempts=job.attempts,
        not_before=_timestamp(job.not_before),
        checkpoint_interval_seconds=job.checkpoint_interval_seconds,
        evicted_at=tuple(evicted),
        held=job.held,
        depends_on=tuple(
            Dependency(d["job"], Condition(d["condition"])) for d in job.depends_on or ()
        ),
        array_id=job.array_id,
        array_parallelism=job.array_parallelism,
    )


def _quota_map(quota: Mapping[str, Mapping[str, Limits]]) -> dict[FlavorResource, QuotaLimits]:
    return {
        (flavor, resource): QuotaLimits(
            limits.nominal, limits.borrowing_limit, limits.lending_limit
        )
        for flavor, resources in quota.items()
        for resource, limits in resources.items()
    }


def load_quota_tree(
    session: Session, now: float | None = None
) -> tuple[dict[str, TenantSpec], dict[str, CohortSpec]]:
    quotas = tenants.all_quotas(session)
    rows = tenants.list_tenants(session)
    cohorts = tenants.list_cohorts(session)
    weights = {t.name: t.weight for t in rows}
    by_allocation = {c.name for c in cohorts if c.weights_from_allocation}
    if by_allocation:
        weights = _allocation_weights(session, rows, by_allocation, now)
    tenant_specs = {
        t.name: TenantSpec(
            t.name, t.cohort, weights[t.name], _quota_map(quotas.get((TENANT, t.name), {}))
        )
        for t in rows
    }
    cohort_specs = {
        c.name: CohortSpec(c.name, c.parent, _quota_map(quotas.get((COHORT, c.name), {})))
        for c in cohorts
    }
    return tenant_specs, cohort_specs


MIN_ALLOCATION_WEIGHT = 0.001
"""The weight of a tenant without allocation in a cohort whose weights follow allocations."""


def _allocation_weights(
    session: Session, rows: Sequence[Tenant], cohorts: set[str], now: float | None
) -> dict[str, float]:
    """Slurm's shares following allocations: in each cohort so marked, the tenants' weights
    add up to what they add up to as set, divided in proportion to the credits allocated to
    each (top-ups) this calendar month (UTC). A cohort with no allocation this month keeps
    the weights as set; a tenant without one gets :data:`MIN_ALLOCATION_WEIGHT`."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    allocated = wallet_store.allocations(session, start, end)
    weights = {t.name: t.weight for t in rows}
    for cohort in cohorts:
        members = [t for t in rows if t.cohort == cohort]
        total = sum(allocated.get(t.name, 0) for t in members)
        if total <= 0:
            continue
        budget = sum(t.weight for t in members)
        for tenant in members:
            share = budget * allocated.get(tenant.name, 0) / total
            weights[tenant.name] = max(share, MIN_ALLOCATION_WEIGHT)
    return weights


def load_usage(session: Session) -> UsageState:
    tenant_usage: dict[str, float] = {}
    user_usage: dict[tuple[str, str], float] = {}
    for row in cluster.load_usage(session):
        if row.user:
            user_usage[(row.tenant, row.user)] = row.gpu_seconds
        else:
            tenant_usage[row.tenant] = row.gpu_seconds
    return UsageState(tenant_usage, user_usage)


def _user_limits(limits: control_store.Limits) -> UserLimits:
    return UserLimits(limits.max_gpus, limits.max_running_jobs, limits.max_queued_jobs)


def load_controls(
    session: Session, queued: Sequence[Job], active: Sequence[Job], now: float | None = None
) -> QueueControls:
    """Stops, limits and the status of the jobs ``queued`` depend on (rows already read are
    not read again)."""
    tenant_stops, flavor_stops = control_store.stopped(session)
    wanted = {d["job"] for job in queued for d in job.depends_on or ()}
    outcomes: dict[str, str] = {}
    if wanted:
        read = {job.id: job.status for job in (*queued, *active)}
        outcomes = {job_id: read[job_id] for job_id in wanted if job_id in read}
        outcomes |= control_store.statuses(session, wanted - outcomes.keys())
    return QueueControls(
        tenant_stops={name: StopPolicy(p) for name, p in tenant_stops.items()},
        flavor_stops={name: StopPolicy(p) for name, p in flavor_stops.items()},
        user_limits={t: _user_limits(v) for t, v in control_store.all_defaults(session).items()},
        user_overrides={k: _user_limits(v) for k, v in control_store.overrides(session).items()},
        outcomes=outcomes,
        credits=load_credits(session, time.time() if now is None else now),
    )


def load_credits(session: Session, now: float) -> dict[str, Credit]:
    """Metered tenants out of credit or requiring cover (:mod:`scheduler.gates`)."""
    return {
        gate.tenant: Credit(gate.available, gate.require_cover, gate.rates)
        for gate in wallet_store.credit_gates(session, datetime.fromtimestamp(now, UTC))
    }


def build_snapshot(
    session: Session,
    nodes: Sequence[NodeState],
    now: float,
    *,
    queued: Iterable[Job] | None = None,
    active: Iterable[Job] | None = None,
) -> Snapshot:
    tenant_specs, cohort_specs = load_quota_tree(session, now)
    queued_rows = list(jobs.queued_jobs(session) if queued is None else queued)
    active_rows = list(jobs.active_jobs(session) if active is None else active)
    return Snapshot(
        now=now,
        nodes=tuple(nodes),
        tenants=tenant_specs,
        cohorts=cohort_specs,
        queued=tuple(job_state(j, now) for j in queued_rows),
        running=tuple(job_state(j, now) for j in active_rows if j.placement),
        usage=load_usage(session),
        preempting=frozenset(j.id for j in queued_rows if j.reason == PREEMPTING),
        controls=load_controls(session, queued_rows, active_rows, now),
    )


def stored_nodes(session: Session) -> tuple[NodeState, ...]:
    """The inventory last written by the scheduler, for readers without a cluster connection."""
    return tuple(_stored_node(node) for node in cluster.list_nodes(session))


def _stored_node(node: Node) -> NodeState:
    return NodeState(
        name=node.name,
        flavor=node.flavor,
        allocatable=Demand(
            node.gpu_allocatable, node.cpu_milli_allocatable, node.memory_bytes_allocatable
        ),
        labels=dict(node.labels),
        schedulable=node.schedulable,
    )
