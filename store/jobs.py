"""Job operations: submit (idempotent), read, list with cursors, cancel, and state transitions.

Every status change goes through :func:`transition`, which consults :mod:`store.jobstates` and
records a :class:`~store.models.JobEvent` in the same transaction, so the event log and the job
can never disagree.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Row,
    Select,
    Table,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quotas.quantity import format_cpu, format_memory
from store import cluster, controls, notify, wallets
from store.common import decode_cursor, encode_cursor, new_array_id, new_job_id, utcnow
from store.errors import Conflict, InvalidRequest, InvalidTransition, NotFound
from store.jobstates import ACTIVE_STATES, JobStatus, is_allowed, is_final
from store.models import Flavor, Job, JobEvent, Node, QuotaEntry, Tenant, UserLimit
from store.tenants import COHORT, TENANT

PRIORITIES = ("low", "normal", "high")
EVICTION_WINDOW_SECONDS = 86400.0
"""How far back a job's evictions are kept in :attr:`Job.evicted_at`."""


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A validated submission; cpu/memory are per worker, ``None`` meaning the flavor default."""

    tenant: str
    name: str
    image: str
    flavor: str
    gpus: int
    workers: int = 1
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cpu_milli: int | None = None
    memory_bytes: int | None = None
    priority: str = "normal"
    max_runtime_seconds: int | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    checkpoint_interval_seconds: int | None = None
    depends_on: list[dict[str, str]] = field(default_factory=list)
    """``[{"job": id, "condition": "succeeded" | "failed" | "finished"}]``."""
    array_count: int | None = None
    """Submit an array of this many tasks (indices 0..count-1) instead of one job."""
    array_parallelism: int | None = None
    """At most this many tasks of the array hold resources at once (default: all)."""

    def fingerprint(self) -> str:
        fields = asdict(self)
        # Absent, a newer field leaves the fingerprint as it was before the field existed, so
        # a retried submission keeps matching its idempotency key across an upgrade.
        if fields["checkpoint_interval_seconds"] is None:
            del fields["checkpoint_interval_seconds"]
        for name in ("depends_on", "array_count", "array_parallelism"):
            if not fields[name]:
                del fields[name]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    replayed: bool


@dataclass(frozen=True, slots=True)
class JobPage:
    items: Sequence[Row[Any]]
    """Rows of the jobs table: the columns asked for, in that order, then ``seq``; each also an
    attribute, like a :class:`Job`'s."""
    next_cursor: str | None


_JOB_TABLE = cast(Table, Job.__table__)
_EVENT_TABLE = cast(Table, JobEvent.__table__)
_INSERT_JOBS = insert(_JOB_TABLE)
_INSERT_EVENTS = insert(_EVENT_TABLE)


@dataclass(slots=True)
class PendingRows:
    """Rows of submitted jobs and their events not inserted yet. A group commit
    (:mod:`store.submissions`) collects them here and inserts them with one Core ``executemany``
    per table: the ORM's unit of work, its identity map and per-object bookkeeping cost more
    than the INSERT itself for rows that are only written."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def insert(self, session: Session) -> None:
        """Insert what is pending (jobs first: events reference them) and signal the change
        (:func:`store.notify.jobs_changed`: the ORM's flush does not see Core inserts)."""
        if not self.jobs:
            return
        session.execute(_INSERT_JOBS, self.jobs)
        session.execute(_INSERT_EVENTS, self.events)
        self.jobs, self.events = [], []
        notify.jobs_changed(session)


def submit(
    session: Session,
    request: JobRequest,
    *,
    user: str,
    job_id: str,
    idempotency_key: str | None = None,
    memo: FactsMemo | None = None,
    pending: PendingRows | None = None,
) -> Submitted:
    """Validate a submission against the platform's configuration and queue it. ``memo``
    shares the facts the checks read among the submissions of one transaction (a group
    commit, :mod:`store.submissions`). With ``pending`` (no idempotency key), the rows are
    added to it instead of the session and the job returned is transient: the caller inserts
    them (:meth:`PendingRows.insert`) before it commits."""
    fingerprint = request.fingerprint()
    if idempotency_key is not None:
        replay = _replay(session, user, idempotency_key, fingerprint)
        if replay is not None:
            return replay
    facts = _check_fits(session, request, user, memo)
    cpu_per_gpu, memory_per_gpu = facts.cpu_milli_per_gpu, facts.memory_bytes_per_gpu
    assert cpu_per_gpu is not None  # _check_fits found the flavor
    assert memory_per_gpu is not None
    count = request.array_count or 1
    if facts.queued_limit is not None or request.depends_on:
        # These count or look up jobs, those of a group commit's earlier rows too.
        if pending is not None:
            pending.insert(session)
        session.flush()
    if facts.queued_limit is not None:
        controls.check_queued_limit(session, request.tenant, user, count, facts.queued_limit)
    wallets.check_credit(request.tenant, user, facts.credit)
    if request.depends_on:
        controls.check_dependencies(session, request.tenant, request.depends_on, job_id=job_id)
    now = utcnow()
    array_id = new_array_id() if request.array_count is not None else None
    values: list[dict[str, Any]] = []
    for index in range(count):
        task_id = job_id if index == 0 else new_job_id()
        row = _new_job_values(request, user, task_id, now, cpu_per_gpu, memory_per_gpu)
        if array_id is not None:
            row["env"] = {
                **row["env"],
                "YUSHAN_ARRAY_ID": array_id,
                "YUSHAN_ARRAY_INDEX": str(index),
            }
            row["array_id"] = array_id
            row["array_index"] = index
            row["array_parallelism"] = request.array_parallelism or count
        if index == 0:
            row["idempotency_key"] = idempotency_key
            row["request_hash"] = fingerprint
        values.append(row)
    if pending is not None and idempotency_key is None:
        pending.jobs += values
        pending.events += [_submitted_event_values(row["id"], now, user) for row in values]
        return Submitted(_transient_job(values[0]), replayed=False)
    rows: list[Job | JobEvent] = []
    for row in values:
        rows += [_transient_job(row), JobEvent(**_submitted_event_values(row["id"], now, user))]
    first = cast(Job, rows[0])
    if idempotency_key is None:
        session.add_all(rows)
        return Submitted(first, replayed=False)
    try:
        with session.begin_nested():
            session.add_all(rows)
    except IntegrityError:
        # A concurrent request with the same key inserted first (the unique constraint on
        # (user, idempotency_key) decided); answer with its job.
        replay = _replay(session, user, idempotency_key, fingerprint)
        if replay is None:
            raise
        return replay
    return Submitted(first, replayed=False)


def _new_job_values(
    request: JobRequest,
    user: str,
    job_id: str,
    now: datetime,
    cpu_per_gpu: int,
    memory_per_gpu: int,
) -> dict[str, Any]:
    """Every column of a new job but ``seq`` (the database numbers it) and ``placement`` (SQL
    NULL: a JSON column given ``None`` stores JSON ``null``), the defaults written out: a Core
    INSERT of many rows needs the same keys in each, and the transient job built from them
    answers the submission as the stored row would."""
    return {
        "id": job_id,
        "version": 1,
        "tenant": request.tenant,
        "user": user,
        "name": request.name,
        "image": request.image,
        "command": list(request.command),
        "args": list(request.args),
        "env": dict(request.env),
        "flavor": request.flavor,
        "gpus": request.gpus,
        "workers": request.workers,
        "cpu_milli": request.cpu_milli or request.gpus * cpu_per_gpu,
        "memory_bytes": request.memory_bytes or request.gpus * memory_per_gpu,
        "priority": request.priority,
        "max_runtime_seconds": request.max_runtime_seconds,
        "checkpoint_interval_seconds": request.checkpoint_interval_seconds,
        "annotations": dict(request.annotations),
        "status": JobStatus.QUEUED.value,
        "reason": "Submitted",
        "message": "waiting for the next scheduling cycle",
        "queue_position": None,
        "attempts": 0,
        "not_before": None,
        "evicted_at": [],
        "exit_code": None,
        "idempotency_key": None,
        "request_hash": None,
        "created_at": now,
        "admitted_at": None,
        "started_at": None,
        "finished_at": None,
        "held": False,
        "depends_on": [dict(d) for d in request.depends_on],
        "array_id": None,
        "array_index": None,
        "array_parallelism": None,
        "estimated_start": None,
        "estimate_is_bound": False,
    }


def _transient_job(values: dict[str, Any]) -> Job:
    """A job entity from :func:`_new_job_values` (its version is the ORM's to set on insert)."""
    return Job(**{column: value for column, value in values.items() if column != "version"})


def _submitted_event_values(job_id: str, now: datetime, user: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "at": now,
        "from_status": None,
        "to_status": JobStatus.QUEUED.value,
        "reason": "Submitted",
        "message": f"submitted by {user}",
    }


@dataclass(frozen=True, slots=True)
class _FitFacts:
    tenant_exists: bool
    cpu_milli_per_gpu: int | None
    memory_bytes_per_gpu: int | None
    gpu_nominal: int | None
    gpu_borrowing_limit: int | None
    nodes_known: bool
    """Whether the scheduler has recorded any node (not before its first iteration)."""
    fitting_nodes: bool
    """Whether a node assigned to the flavor could hold one worker, defaults included."""
    queued_limit: int | None
    """The user's queued-jobs limit in the tenant: their override, else the tenant's default."""
    credit: wallets.CreditFacts
    """The tenant's wallet and the user's budget, if any (a 402 when exhausted)."""


def _fit_facts_statement() -> Select[Any]:
    tenant: BindParameter[str] = bindparam("tenant")
    user: BindParameter[str] = bindparam("user")
    flavor: BindParameter[str] = bindparam("flavor")
    gpus: BindParameter[int] = bindparam("gpus", type_=BigInteger)
    cpu: BindParameter[int | None] = bindparam("cpu", type_=BigInteger)
    memory: BindParameter[int | None] = bindparam("memory", type_=BigInteger)
    flavor_row = select(Flavor).where(Flavor.name == flavor)
    cpu_per_gpu = flavor_row.with_only_columns(Flavor.cpu_milli_per_gpu).scalar_subquery()
    memory_per_gpu = flavor_row.with_only_columns(Flavor.memory_bytes_per_gpu).scalar_subquery()
    fitting = select(Node.name).where(
        Node.flavor == flavor,
        Node.gpu_allocatable >= gpus,
        Node.cpu_milli_allocatable >= func.coalesce(cpu, gpus * cpu_per_gpu),
        Node.memory_bytes_allocatable >= func.coalesce(memory, gpus * memory_per_gpu),
    )
    quota = select(QuotaEntry).where(
        QuotaEntry.owner_kind == TENANT,
        QuotaEntry.owner == tenant,
        QuotaEntry.flavor == flavor,
        QuotaEntry.resource == "gpu",
    )
    return select(
        select(func.count()).where(Tenant.name == tenant).scalar_subquery(),
        cpu_per_gpu,
        memory_per_gpu,
        quota.with_only_columns(QuotaEntry.nominal).scalar_subquery(),
        quota.with_only_columns(QuotaEntry.borrowing_limit).scalar_subquery(),
        exists(select(Node.name)),
        exists(fitting),
        func.coalesce(
            select(UserLimit.max_queued_jobs)
            .where(UserLimit.tenant == tenant, UserLimit.user == user)
            .scalar_subquery(),
            select(Tenant.max_queued_jobs_per_user).where(Tenant.name == tenant).scalar_subquery(),
        ),
        *wallets.credit_columns(tenant, user),
    )


# Built once: constructing this statement costs more than running it.
_FIT_FACTS = _fit_facts_statement()


FactsMemo = dict[tuple[str, str, str, int, int | None, int | None], _FitFacts]
"""Facts read for (tenant, user, flavor, GPUs, CPU, memory), within one transaction."""


def _fit_facts(
    session: Session, request: JobRequest, user: str, memo: FactsMemo | None = None
) -> _FitFacts:
    """Everything the submit checks need, in one round trip to the database (none when
    ``memo`` holds them already)."""
    key = (
        request.tenant,
        user,
        request.flavor,
        request.gpus,
        request.cpu_milli,
        request.memory_bytes,
    )
    if memo is not None and key in memo:
        return memo[key]
    parameters = {
        "tenant": request.tenant,
        "user": user,
        "flavor": request.flavor,
        "gpus": request.gpus,
        "cpu": request.cpu_milli,
        "memory": request.memory_bytes,
    }
    row = session.execute(_FIT_FACTS, parameters).one()
    facts = _FitFacts(
        bool(row[0]),
        row[1],
        row[2],
        row[3],
        row[4],
        bool(row[5]),
        bool(row[6]),
        row[7],
        wallets.CreditFacts(*row[8:]),
    )
    if memo is not None:
        memo[key] = facts
    return facts


def _replay(session: Session, user: str, key: str, fingerprint: str) -> Submitted | None:
    existing = session.scalar(select(Job).where(Job.user == user, Job.idempotency_key == key))
    if existing is None:
        return None
    if existing.request_hash != fingerprint:
        raise Conflict(
            "Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
        )
    return Submitted(existing, replayed=True)


def _check_fits(
    session: Session, request: JobRequest, user: str, memo: FactsMemo | None = None
) -> _FitFacts:
    """Refuse a job that can never run: unknown flavor, no quota, a worker bigger than any node
    of its flavor (GPUs, CPU or memory, the flavor's per-GPU defaults included).

    The node check uses the inventory the scheduler last recorded; with none yet (the scheduler
    has not run) nothing is refused on those grounds, and a flavor without nodes (all removed,
    or created with ``allow_empty``) takes jobs that wait with ``NoNodesForFlavor``.
    Returns the facts read, the flavor's per-GPU defaults and the user's queued limit among them.
    """
    facts = _fit_facts(session, request, user, memo)
    if not facts.tenant_exists:
        raise NotFound(f"tenant {request.tenant!r} not found")
    if facts.cpu_milli_per_gpu is None or facts.memory_bytes_per_gpu is None:
        raise InvalidRequest(f"unknown flavor {request.flavor!r}", field="flavor")
    if facts.gpu_nominal is None:
        raise InvalidRequest(
            f"tenant {request.tenant!r} has no quota for flavor {request.flavor!r}",
            field="flavor",
        )
    total = request.gpus * request.workers
    limit = facts.gpu_borrowing_limit
    if limit is not None and total > facts.gpu_nominal + limit:
        raise InvalidRequest(
            f"the job needs {total} {request.flavor} GPUs but tenant {request.tenant!r} may use "
            f"at most {facts.gpu_nominal + limit} (nominal {facts.gpu_nominal} + "
            f"borrowing limit {limit})",
            field="gpus",
        )
    if facts.nodes_known and not facts.fitting_nodes:
        worker = _Worker(
            request.gpus,
            request.cpu_milli or request.gpus * facts.cpu_milli_per_gpu,
            request.memory_bytes or request.gpus * facts.memory_bytes_per_gpu,
        )
        _check_some_node_holds(session, request, worker)
    return facts


@dataclass(frozen=True, slots=True)
class _Worker:
    """What one worker asks of a node."""

    gpus: int
    cpu_milli: int
    memory_bytes: int

    def fits(self, node: Node) -> bool:
        return (
            node.gpu_allocatable >= self.gpus
            and node.cpu_milli_allocatable >= self.cpu_milli
            and node.memory_bytes_allocatable >= self.memory_bytes
        )


def _check_some_node_holds(session: Session, request: JobRequest, worker: _Worker) -> None:
    """Refuse a worker no node of its flavor can hold, naming the largest node and the field
    to change. Runs only when the one-query check found no node (rare), so its extra queries
    cost the common path nothing."""
    flavor = session.get(Flavor, request.flavor)
    assert flavor is not None  # _check_fits found its defaults
    nodes = cluster.nodes_of_flavor(session, flavor)
    if not nodes or any(worker.fits(node) for node in nodes):
        return
    with_gpus = [n for n in nodes if n.gpu_allocatable >= worker.gpus]
    with_cpu = [n for n in with_gpus if n.cpu_milli_allocatable >= worker.cpu_milli]
    # The first resource no node offers alongside the ones before it, and the node that comes
    # closest: the one with the most of it among those that offer the rest.
    field, pool = (
        ("gpus", nodes)
        if not with_gpus
        else ("cpu", with_gpus)
        if not with_cpu
        else ("memory", with_cpu)
    )
    big = cluster.largest(pool, field)
    defaults = []
    if request.cpu_milli is None:
        defaults.append(f"{format_cpu(flavor.cpu_milli_per_gpu)} CPU")
    if request.memory_bytes is None:
        defaults.append(f"{format_memory(flavor.memory_bytes_per_gpu)} memory")
    default_text = (
        f" (the {flavor.name} default per GPU: {' and '.join(defaults)})" if defaults else ""
    )
    advice = {
        "gpus": "use fewer GPUs per worker and more workers",
        "cpu": "ask for less CPU per worker (cpu), or fewer GPUs per worker",
        "memory": "ask for less memory per worker (memory), or fewer GPUs per worker",
    }[field]
    raise InvalidRequest(
        f"a worker needs {worker.gpus} GPUs, {format_cpu(worker.cpu_milli)} CPU and "
        f"{format_memory(worker.memory_bytes)} memory{default_text}, but no {flavor.name} node "
        f"can hold it; the largest is {big.name} with {big.gpu_allocatable} GPUs, "
        f"{format_cpu(big.cpu_milli_allocatable)} CPU and "
        f"{format_memory(big.memory_bytes_allocatable)} memory allocatable: {advice}",
        field=f"body.{field}",
    )


def get(session: Session, job_id: str, *, tenants: Sequence[str] | None = None) -> Job:
    """A job by id; ``tenants`` restricts visibility (a job outside them is 'not found')."""
    return visible(session.scalar(select(Job).where(Job.id == job_id)), job_id, tenants)


def visible(job: Job | None, job_id: str, tenants: Sequence[str] | None) -> Job:
    """``job`` as read by id, if the caller may see it (``tenants``: those it may see, all
    when ``None``); 'not found' otherwise, as for a job that does not exist."""
    if job is None or (tenants is not None and job.tenant not in tenants):
        raise NotFound(f"job {job_id!r} not found")
    return job


def get_for_update(session: Session, job_id: str) -> Job:
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    return job


def list_jobs(
    session: Session,
    *,
    columns: tuple[str, ...],
    tenants: Sequence[str] | None,
    status: Sequence[str] | None = None,
    user: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    array_id: str | None = None,
) -> JobPage:
    """Newest first; ``next_cursor`` continues after the last item returned. The items are
    plain rows of the ``columns`` the caller shows, then ``seq`` (no ORM identity map: a page
    is only read, and loading it as entities costs three times as much; the bookkeeping
    columns, such as ``evicted_at``, are neither sent nor decoded)."""
    query = _page_select(columns).limit(limit + 1)
    if array_id is not None:
        query = query.where(Job.array_id == array_id)
    if tenants is not None:
        query = query.where(Job.tenant.in_(tenants))
    if status:
        query = query.where(Job.status.in_(status))
    if user is not None:
        query = query.where(Job.user == user)
    if cursor is not None:
        try:
            query = query.where(Job.seq < decode_cursor(cursor))
        except ValueError as error:
            raise InvalidRequest("invalid cursor", field="query.cursor") from error
    # On the session's connection: a Core select through Session.execute still pays for the
    # ORM's result handling (a sixth of this query's client time).
    rows = session.connection().execute(query).all()
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1].seq) if len(rows) > limit else None
    return JobPage(items, next_cursor)


@functools.cache
def _page_select(columns: tuple[str, ...]) -> Select[Any]:
    """Newest first, ``columns`` then ``seq``: built once per set of columns (each build
    coerces every column again)."""
    selected = [*(_JOB_TABLE.c[name] for name in columns), _JOB_TABLE.c.seq]
    return select(*selected).order_by(Job.seq.desc())


def events(session: Session, job_id: str) -> Sequence[JobEvent]:
    return session.scalars(
        select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
    ).all()


def transition(
    session: Session,
    job: Job,
    target: JobStatus,
    reason: str,
    message: str = "",
    *,
    at: datetime | None = None,
) -> None:
    """Move ``job`` to ``target`` if the state machine allows it, and record the event."""
    source = JobStatus(job.status)
    if not is_allowed(source, target):
        raise InvalidTransition(f"job {job.id} cannot go from {source} to {target}")
    now = at or utcnow()
    job.status = target.value
    job.reason = reason
    job.message = message
    if target is JobStatus.ADMITTED:
        job.admitted_at = now
    elif target is JobStatus.RUNNING:
        job.started_at = now
    elif is_final(target):
        job.finished_at = now
        job.queue_position = None
    if target is not JobStatus.QUEUED:
        job.queue_position = None
    if target is JobStatus.PREEMPTED:
        job.evicted_at = [*recent_evictions(job, now.timestamp()), now.timestamp()]
    session.add(
        JobEvent(
            job_id=job.id,
            at=now,
            from_status=source.value,
            to_status=target.value,
            reason=reason,
            message=message,
        )
    )


def recent_evictions(job: Job, now: float) -> list[float]:
    """Epoch seconds of the job's evictions in the :data:`EVICTION_WINDOW_SECONDS` before
    ``now``, oldest first (stored instants are microsecond-rounded, so one may lie a hair after
    a ``now`` taken from the same clock; it counts)."""
    since = now - EVICTION_WINDOW_SECONDS
    return sorted(float(t) for t in job.evicted_at or () if float(t) > since)


def cancel(session: Session, job: Job, *, by: str) -> Job:
    status = JobStatus(job.status)
    if is_final(status):
        raise Conflict(f"job {job.id} is already {status}; only unfinished jobs can be cancelled")
    transition(session, job, JobStatus.CANCELLED, "Cancelled", f"cancelled by {by}")
    return job


def active_jobs(session: Session) -> Sequence[Job]:
    """Jobs holding (or about to hold) cluster resources: admitted or running."""
    return session.scalars(
        select(Job).where(Job.status.in_([s.value for s in ACTIVE_STATES])).order_by(Job.seq)
    ).all()


def queued_jobs(session: Session) -> Sequence[Job]:
    return session.scalars(
        select(Job).where(Job.status == JobStatus.QUEUED.value).order_by(Job.seq)
    ).all()


def usage_by_tenant(session: Session, tenant: str) -> dict[str, dict[str, Any]]:
    """GPUs, CPU and memory held by a tenant's admitted and running jobs, per flavor."""
    rows = session.execute(
        select(
            Job.flavor,
            func.sum(Job.gpus * Job.workers),
            func.sum(Job.cpu_milli * Job.workers),
            func.sum(Job.memory_bytes * Job.workers),
            func.count(),
        )
        .where(Job.tenant == tenant, Job.status.in_([s.value for s in ACTIVE_STATES]))
        .group_by(Job.flavor)
    ).all()
    return {
        flavor: {"gpu": int(gpu), "cpu": int(cpu), "memory": int(memory), "jobs": int(count)}
        for flavor, gpu, cpu, memory, count in rows
    }


__all__ = ["COHORT", "PRIORITIES", "JobPage", "JobRequest", "PendingRows", "Submitted", "submit"]


def array_tasks(session: Session, array_id: str, *, tenants: Sequence[str] | None) -> list[Job]:
    """The tasks of an array by index; an array outside ``tenants`` is 'not found'."""
    tasks = list(
        session.scalars(select(Job).where(Job.array_id == array_id).order_by(Job.array_index))
    )
    if not tasks or (tenants is not None and tasks[0].tenant not in tenants):
        raise NotFound(f"array {array_id!r} not found")
    return tasks


def run_intervals(
    session: Session, tenant: str, since: datetime
) -> list[tuple[datetime, datetime | None, int]]:
    """``(started_at, finished_at, GPUs of all workers)`` of the tenant's jobs that hold GPUs
    now or finished since ``since`` (a requeued job counts from its latest start)."""
    active = [s.value for s in ACTIVE_STATES]
    query = select(Job.started_at, Job.finished_at, Job.gpus * Job.workers).where(
        Job.tenant == tenant,
        Job.started_at.is_not(None),
        or_(Job.status.in_(active), Job.finished_at >= since),
    )
    return [(start, end, gpus) for start, end, gpus in session.execute(query) if start is not None]


def placements(session: Session) -> list[tuple[str, int, list[str]]]:
    """``(tenant, GPUs per worker, node of each worker)`` of every admitted or running job:
    who holds which GPUs (three columns, not whole rows: the portal's cluster page)."""
    active = [s.value for s in ACTIVE_STATES]
    query = select(Job.tenant, Job.gpus, Job.placement).where(Job.status.in_(active))
    return [(tenant, gpus, list(nodes or ())) for tenant, gpus, nodes in session.execute(query)]
