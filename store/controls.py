"""Queue controls in the store: holding, releasing and editing queued jobs, stop policies of
tenants and flavors, per-user limits, and the checks submission makes for them.

- **Hold / release / edit** apply to queued jobs only (a job that holds resources cannot be
  held: :class:`~store.errors.Conflict`). They are versioned job writes, so a hold racing with
  the scheduler's admission of the same job loses or wins cleanly (the API answers 409 on a
  lost race). Each is recorded as a job event (``queued -> queued``).
- **Dependencies** must name existing jobs of the same tenant, and may not close a cycle
  (:func:`find_cycle`; a submission cannot, an edit of ``depends_on`` could).
- **Per-user limits**: tenant defaults in ``tenants.max_*_per_user``, overrides in
  ``user_limits`` (an unset override field inherits the default). The queued-jobs limit is
  checked here, at submission, under a lock of the tenant row (a no-op update) so that
  concurrent submissions of one tenant cannot both slip under it; the running limits are the cycle's
  (:mod:`scheduler.limits`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.common import utcnow
from store.errors import Conflict, InvalidRequest, LimitExceeded, NotFound
from store.jobstates import JobStatus
from store.models import Flavor, Job, JobEvent, Tenant, UserLimit

STOP_POLICIES = ("open", "hold", "hold_and_drain")
CONDITIONS = ("succeeded", "failed", "finished")
LIMIT_NAMES = ("max_gpus", "max_running_jobs", "max_queued_jobs")


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-user limits; ``None``: unlimited (defaults) or inherited (overrides)."""

    max_gpus: int | None = None
    max_running_jobs: int | None = None
    max_queued_jobs: int | None = None

    def over(self, default: Limits) -> Limits:
        return Limits(
            *(
                getattr(default, name) if getattr(self, name) is None else getattr(self, name)
                for name in LIMIT_NAMES
            )
        )


# -- hold, release, edit ------------------------------------------------------------------------


def _require_queued(job: Job, action: str) -> None:
    if job.status != JobStatus.QUEUED.value:
        raise Conflict(
            f"job {job.id} is {job.status}; only queued jobs can be {action}", field="status"
        )


def _event(session: Session, job: Job, reason: str, message: str) -> None:
    session.add(
        JobEvent(
            job_id=job.id,
            at=utcnow(),
            from_status=job.status,
            to_status=job.status,
            reason=reason,
            message=message,
        )
    )


def hold(session: Session, job: Job, *, by: str) -> Job:
    """Keep a queued job from being admitted until it is released (idempotent)."""
    _require_queued(job, "held")
    if not job.held:
        job.held = True
        job.reason = "Held"
        job.message = f"held by {by}; release it to let it start"
        job.queue_position = None
        job.estimated_start = None
        _event(session, job, "Held", f"held by {by}")
    return job


def release(session: Session, job: Job, *, by: str) -> Job:
    """Let a held job be admitted again (idempotent)."""
    _require_queued(job, "released")
    if job.held:
        job.held = False
        job.reason = "Released"
        job.message = f"released by {by}; waiting for the next scheduling cycle"
        _event(session, job, "Released", f"released by {by}")
    return job


@dataclass(frozen=True, slots=True)
class JobEdit:
    """Fields of a queued job to change (``None``: unchanged; ``clear_max_runtime`` removes the
    time limit)."""

    name: str | None = None
    priority: str | None = None
    max_runtime_seconds: int | None = None
    clear_max_runtime: bool = False
    depends_on: list[dict[str, str]] | None = None


def edit(session: Session, job: Job, change: JobEdit, *, by: str) -> Job:
    """Apply ``change`` to a queued job (rights are the caller's business)."""
    _require_queued(job, "edited")
    changed: list[str] = []
    if change.name is not None and change.name != job.name:
        job.name = change.name
        changed.append(f"name={change.name}")
    if change.priority is not None and change.priority != job.priority:
        job.priority = change.priority
        changed.append(f"priority={change.priority}")
    if change.clear_max_runtime and job.max_runtime_seconds is not None:
        job.max_runtime_seconds = None
        changed.append("max_runtime_seconds=none")
    elif change.max_runtime_seconds is not None and (
        change.max_runtime_seconds != job.max_runtime_seconds
    ):
        job.max_runtime_seconds = change.max_runtime_seconds
        changed.append(f"max_runtime_seconds={change.max_runtime_seconds}")
    if change.depends_on is not None and change.depends_on != job.depends_on:
        check_dependencies(session, job.tenant, change.depends_on, job_id=job.id)
        job.depends_on = list(change.depends_on)
        changed.append("depends_on=" + ",".join(d["job"] for d in change.depends_on))
    if changed:
        _event(session, job, "Updated", f"updated by {by}: {' '.join(changed)}")
    return job


# -- dependencies -------------------------------------------------------------------------------


def check_dependencies(
    session: Session, tenant: str, depends_on: Sequence[Mapping[str, str]], *, job_id: str
) -> None:
    """Refuse dependencies on unknown jobs, other tenants' jobs, and cycles."""
    ids = [d["job"] for d in depends_on]
    query = select(Job.id, Job.tenant).where(Job.id.in_(ids))
    rows = dict(session.execute(query).all())
    for index, dependency in enumerate(depends_on):
        field = f"depends_on.{index}.job"
        if dependency["condition"] not in CONDITIONS:
            raise InvalidRequest(
                f"unknown condition {dependency['condition']!r}",
                field=f"depends_on.{index}.condition",
            )
        owner = rows.get(dependency["job"])
        if owner is None or owner != tenant:
            # Another tenant's job answers like a missing one: its existence is not revealed.
            raise InvalidRequest(
                f"job {dependency['job']!r} not found in tenant {tenant!r}; a job may only "
                "depend on jobs of its own tenant",
                field=field,
            )
    cycle = find_cycle(job_id, ids, lambda other: _dependencies_of(session, other))
    if cycle is not None:
        raise InvalidRequest(
            "the dependencies would form a cycle: " + " -> ".join(cycle), field="depends_on"
        )


def _dependencies_of(session: Session, job_id: str) -> list[str]:
    stored = session.scalar(select(Job.depends_on).where(Job.id == job_id))
    return [d["job"] for d in stored or ()]


def find_cycle(
    start: str, depends_on: Iterable[str], edges: Callable[[str], Iterable[str]]
) -> list[str] | None:
    """A path ``start -> ... -> start`` if ``start`` depending on ``depends_on`` would close a
    cycle, given each other job's dependencies (``edges``); ``None`` otherwise."""
    stack: list[tuple[str, list[str]]] = [(job, [start, job]) for job in depends_on]
    seen: set[str] = set()
    while stack:
        job, path = stack.pop()
        if job == start:
            return path
        if job in seen:
            continue
        seen.add(job)
        stack.extend((following, [*path, following]) for following in edges(job))
    return None


def statuses(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """The status of each job of ``ids`` that exists."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    result: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(Job.id, Job.status).where(Job.id.in_(chunk))
        result.update(dict(session.execute(query).all()))
    return result


# -- stop policies ------------------------------------------------------------------------------


def set_stop_policy(session: Session, kind: str, name: str, policy: str) -> Tenant | Flavor:
    """Set the stop policy of a tenant or a flavor (``kind``: ``tenant`` | ``flavor``)."""
    if policy not in STOP_POLICIES:
        raise InvalidRequest(f"unknown stop policy {policy!r}", field="stop_policy")
    row: Tenant | Flavor | None = (
        session.get(Tenant, name) if kind == "tenant" else session.get(Flavor, name)
    )
    if row is None:
        raise NotFound(f"{kind} {name!r} not found")
    row.stop_policy = policy
    return row


def stopped(session: Session) -> tuple[dict[str, str], dict[str, str]]:
    """Tenants and flavors whose stop policy is not ``open``."""
    tenants = select(Tenant.name, Tenant.stop_policy).where(Tenant.stop_policy != "open")
    flavors = select(Flavor.name, Flavor.stop_policy).where(Flavor.stop_policy != "open")
    return (
        dict(session.execute(tenants).all()),
        dict(session.execute(flavors).all()),
    )


# -- per-user limits ----------------------------------------------------------------------------


def tenant_defaults(tenant: Tenant) -> Limits:
    return Limits(
        tenant.max_gpus_per_user, tenant.max_running_jobs_per_user, tenant.max_queued_jobs_per_user
    )


def set_tenant_defaults(tenant: Tenant, limits: Limits) -> None:
    tenant.max_gpus_per_user = limits.max_gpus
    tenant.max_running_jobs_per_user = limits.max_running_jobs
    tenant.max_queued_jobs_per_user = limits.max_queued_jobs


def overrides(session: Session, tenant: str | None = None) -> dict[tuple[str, str], Limits]:
    """Per-user overrides, by (tenant, user), of one tenant or all."""
    query = select(UserLimit).order_by(UserLimit.tenant, UserLimit.user)
    if tenant is not None:
        query = query.where(UserLimit.tenant == tenant)
    return {
        (row.tenant, row.user): Limits(row.max_gpus, row.max_running_jobs, row.max_queued_jobs)
        for row in session.scalars(query)
    }


def all_defaults(session: Session) -> dict[str, Limits]:
    """Tenants that set any per-user default, with their defaults."""
    rows = session.scalars(
        select(Tenant).where(
            (Tenant.max_gpus_per_user.is_not(None))
            | (Tenant.max_running_jobs_per_user.is_not(None))
            | (Tenant.max_queued_jobs_per_user.is_not(None))
        )
    )
    return {row.name: tenant_defaults(row) for row in rows}


def set_user_limits(session: Session, tenant: str, user: str, limits: Limits) -> UserLimit:
    if session.get(Tenant, tenant) is None:
        raise NotFound(f"tenant {tenant!r} not found")
    row = session.get(UserLimit, (tenant, user))
    if row is None:
        row = UserLimit(tenant=tenant, user=user)
        session.add(row)
    row.max_gpus = limits.max_gpus
    row.max_running_jobs = limits.max_running_jobs
    row.max_queued_jobs = limits.max_queued_jobs
    return row


def delete_user_limits(session: Session, tenant: str, user: str) -> None:
    row = session.get(UserLimit, (tenant, user))
    if row is None:
        raise NotFound(f"user {user!r} has no limits of their own in tenant {tenant!r}")
    session.delete(row)


def check_queued_limit(session: Session, tenant: str, user: str, adding: int, limit: int) -> None:
    """Refuse a submission that would take the user past their queued-jobs ``limit`` (their
    override, else the tenant's default: read with the submission's other checks).

    Locks the tenant row before counting, so two concurrent submissions cannot both count the
    same free slot.
    """
    # A no-op write: a row lock on PostgreSQL, the database write lock on SQLite (whose reads
    # take none), held until commit; concurrent submissions of the tenant count after it.
    session.execute(
        update(Tenant).where(Tenant.name == tenant).values(stop_policy=Tenant.stop_policy)
    )
    queued = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.tenant == tenant, Job.user == user, Job.status == JobStatus.QUEUED.value)
    )
    if (queued or 0) + adding > limit:
        raise LimitExceeded(
            f"user {user} has {queued} queued job(s) in tenant {tenant} and the limit is "
            f"{limit} (max_queued_jobs); this submission adds {adding}",
            field="max_queued_jobs",
        )


def limits_detail(limits: Limits) -> dict[str, Any]:
    return {name: getattr(limits, name) for name in LIMIT_NAMES}
