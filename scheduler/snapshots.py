"""Building the cycle's :class:`~scheduler.model.Snapshot` from the store and the cluster.

This is the only place that knows both the database rows and the cycle's value types. It reads
everything the cycle needs in one transaction so the snapshot is consistent: quotas, tenants,
cohorts, queued and active jobs (with their checkpoint interval and the evictions of the last
24 hours, both read from the job rows themselves), decayed usage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from scheduler.model import (
    CohortSpec,
    Demand,
    FlavorResource,
    JobState,
    NodeState,
    Priority,
    QuotaLimits,
    Snapshot,
    TenantSpec,
    UsageState,
)
from store import cluster, jobs, tenants
from store.common import as_utc_or_none
from store.models import Job, Node
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
    session: Session,
) -> tuple[dict[str, TenantSpec], dict[str, CohortSpec]]:
    quotas = tenants.all_quotas(session)
    tenant_specs = {
        t.name: TenantSpec(t.name, t.cohort, t.weight, _quota_map(quotas.get((TENANT, t.name), {})))
        for t in tenants.list_tenants(session)
    }
    cohort_specs = {
        c.name: CohortSpec(c.name, c.parent, _quota_map(quotas.get((COHORT, c.name), {})))
        for c in tenants.list_cohorts(session)
    }
    return tenant_specs, cohort_specs


def load_usage(session: Session) -> UsageState:
    tenant_usage: dict[str, float] = {}
    user_usage: dict[tuple[str, str], float] = {}
    for row in cluster.load_usage(session):
        if row.user:
            user_usage[(row.tenant, row.user)] = row.gpu_seconds
        else:
            tenant_usage[row.tenant] = row.gpu_seconds
    return UsageState(tenant_usage, user_usage)


def build_snapshot(
    session: Session,
    nodes: Sequence[NodeState],
    now: float,
    *,
    queued: Iterable[Job] | None = None,
    active: Iterable[Job] | None = None,
) -> Snapshot:
    tenant_specs, cohort_specs = load_quota_tree(session)
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
