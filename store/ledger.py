"""The usage ledger: accrual of job attempts in the scheduler's iteration, and reports.

**Accrual** (:func:`accrue`) runs inside the scheduler loop's iteration transaction. Each job
attempt that runs has a :class:`~store.models.JobAccrual` row saying how far it has been
accrued (``accrued_until_ms``). An interval is written as one :class:`~store.models.LedgerEntry`
— unique per (job, attempt, kind, interval start) — and the accrual row advances to its end,
with the wallet charge, all in the same transaction. A rolled-back iteration or a killed
scheduler therefore leaves the accrual row where the last *committed* iteration put it: the
next iteration accrues from there, so no interval is lost or counted twice.

Interval bounds come from the cluster where it knows better than the loop: an attempt starts
when its first pod's container started and ends when its last one terminated (pod status
times), so a scheduler that was down while a job started or finished still charges the pods'
real run time. Without those (a job cancelled, evicted, or whose pods vanished) the loop's own
clock bounds the interval. Short of a close, an interval is written only once it is at least
``min_interval_seconds`` long, so a busy loop does not write a row per job per cycle.

**Preemption losses.** When an attempt is evicted (preempted, drained, node or pods lost, or
failed at the retry limit for it), the work since its last checkpoint (every
``checkpoint_interval_seconds`` from the attempt's start; the whole attempt without one) is
lost: it is written as a ``preemption_loss`` row with a negative cost (at most what the attempt
was charged), refunded to the wallet.

**Roll-ups.** The rows an iteration appends are added, in the same transaction, to per job and
month sums (:class:`~store.models.LedgerJobMonth`, the statement's lines) and per tenant and day
sums (:class:`~store.models.LedgerTenantDay`, the spend per day), by :func:`append`. Grouping a
month of the ledger took ~90 ms for a tenant with 2,375 jobs in a month at one row per 600 s,
and grows with the rows; the roll-ups are read in a few milliseconds. The ledger stays the
source of truth: a roll-up always equals the ``GROUP BY`` of the rows it covers, and a
rolled-back iteration rolls both back.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, case, false, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from quotas.money import Rate, Usage, charge
from store import jobs, wallets
from store.common import as_utc
from store.errors import InvalidRequest
from store.jobstates import ACTIVE_STATES, JobStatus
from store.models import (
    Job,
    JobAccrual,
    LedgerEntry,
    LedgerJobMonth,
    LedgerTenantDay,
    Tenant,
    Wallet,
    WalletTransaction,
)
from store.prices import PriceBook, price_book

RUN = "run"
DAY_MS = 86_400_000
PREEMPTION_LOSS = "preemption_loss"
GROUPS = ("tenant", "user", "flavor")
_EVICTED_STATES = frozenset(
    {JobStatus.QUEUED, JobStatus.PREEMPTED, JobStatus.ADMITTED, JobStatus.RUNNING}
)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A job attempt that was admitted or running when the iteration began, after the
    iteration's own writes (``job`` is the row; ``attempt`` its attempt number then)."""

    job: Job
    attempt: int
    pod_started_at: float | None = None
    """When its first pod started running (epoch seconds), if the cluster says."""
    pod_finished_at: float | None = None
    """When its last pod terminated, if all have."""
    changed: bool = True
    """It started or ended in this iteration (``False``: it was and still is running)."""


@dataclass(slots=True)
class AccrualReport:
    spend: dict[tuple[str, str], int] = field(default_factory=dict)
    """Micro-credits charged for run time per (tenant, flavor) in this iteration."""
    credited: dict[tuple[str, str], int] = field(default_factory=dict)
    """Micro-credits credited back for preemption losses per (tenant, flavor)."""
    balances: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Every wallet's (balance, available credit) after the iteration's charges."""


def usage_of(job: Job) -> Usage:
    return Usage(
        job.gpus * job.workers, job.cpu_milli * job.workers, job.memory_bytes * job.workers
    )


def _ms(value: datetime | None) -> int | None:
    return None if value is None else round(as_utc(value).timestamp() * 1000)


def _month_of(ms: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.year, moment.month


class _Accruer:
    """Writes the ledger rows of one iteration and gathers their wallet movements."""

    def __init__(self, session: Session, now_ms: int) -> None:
        self.session = session
        self.now_ms = now_ms
        self.kinds = dict(session.execute(select(Tenant.name, Tenant.kind)).all())
        self.metered = set(session.scalars(select(Wallet.tenant)))
        self._book: PriceBook | None = None
        self.moves: dict[tuple[str, str, str, tuple[int, int]], list[int]] = {}
        self.entries: list[LedgerEntry] = []
        self.report = AccrualReport()

    @property
    def book(self) -> PriceBook:
        if self._book is None:
            self._book = price_book(self.session)
        return self._book

    def rate(self, job: Job, at_ms: int) -> Rate:
        return self.book.rate(job.flavor, self.kinds.get(job.tenant, ""), at_ms / 1000)

    def interval(self, job: Job, accrual: JobAccrual, end_ms: int) -> None:
        start_ms = accrual.accrued_until_ms
        if end_ms <= start_ms:
            return
        rate = self.rate(job, start_ms)
        cost, carry = charge(rate, usage_of(job), end_ms - start_ms, accrual.carry)
        self._entry(job, accrual.attempt, RUN, start_ms, end_ms, rate, cost)
        accrual.accrued_until_ms = end_ms
        accrual.carry = carry
        accrual.charged += cost

    def close(self, job: Job, accrual: JobAccrual, end_ms: int, *, evicted: bool) -> None:
        self.interval(job, accrual, end_ms)
        accrual.closed = True
        if not evicted:
            return
        elapsed = accrual.accrued_until_ms - accrual.started_ms
        every = (job.checkpoint_interval_seconds or 0) * 1000
        lost = elapsed % every if every else elapsed
        if lost <= 0:
            return
        end = accrual.accrued_until_ms
        rate = self.rate(job, end - lost)
        refund = min(accrual.charged, charge(rate, usage_of(job), lost)[0])
        self._entry(job, accrual.attempt, PREEMPTION_LOSS, end - lost, end, rate, -refund)
        accrual.charged -= refund

    def _entry(
        self, job: Job, attempt: int, kind: str, start: int, end: int, rate: Rate, cost: int
    ) -> None:
        usage = usage_of(job)
        metered = job.tenant in self.metered
        self.entries.append(
            LedgerEntry(
                job_id=job.id,
                attempt=attempt,
                kind=kind,
                tenant=job.tenant,
                user=job.user,
                flavor=job.flavor,
                start_ms=start,
                end_ms=end,
                gpus=usage.gpus,
                cpu_milli=usage.cpu_milli,
                memory_bytes=usage.memory_bytes,
                gpu_hour=rate.gpu_hour,
                cost=cost,
                charged_to_wallet=metered,
            )
        )
        totals = self.report.spend if kind == RUN else self.report.credited
        totals[(job.tenant, job.flavor)] = totals.get((job.tenant, job.flavor), 0) + abs(cost)
        if metered and cost:
            move = "charge" if kind == RUN else "refund"
            key = (job.tenant, job.user, move, _month_of(end))
            total = self.moves.setdefault(key, [0, end])
            total[0] += cost
            total[1] = max(total[1], end)

    def settle(self) -> AccrualReport:
        """Append the rows with their roll-ups, and charge the wallets: one transaction per
        (tenant, member, kind, month of the rows), dated at the last row's end, so a month's
        statement and its transactions agree."""
        append(self.session, self.entries)
        for (tenant, user, move, _month), (total, end) in sorted(self.moves.items()):
            at = datetime.fromtimestamp(end / 1000, UTC)
            wallets.record(self.session, tenant, move, -total, user=user, at=at, note="usage")
        if self.metered:
            rows = self.session.execute(select(Wallet.tenant, Wallet.balance, Wallet.credit_limit))
            self.report.balances = {t: (b, b + limit) for t, b, limit in rows}
        return self.report


def append(session: Session, entries: Sequence[LedgerEntry]) -> None:
    """Append ledger rows and add them to the roll-ups, in the caller's transaction (the only
    way rows enter the ledger, so the roll-ups never drift from it)."""
    if not entries:
        return
    session.add_all(entries)
    session.flush()  # the rows' ids: a statement line is ordered by its job's first row
    _roll_up_months(session, entries)
    _roll_up_days(session, entries)


def month_key(end_ms: int) -> str:
    """The UTC month a row ending at ``end_ms`` counts in (``2026-11``), as statements ask."""
    return datetime.fromtimestamp(end_ms / 1000, UTC).strftime("%Y-%m")


def _roll_up_months(session: Session, entries: Sequence[LedgerEntry]) -> None:
    keys = {(entry.job_id, month_key(entry.end_ms)) for entry in entries}
    found = session.scalars(
        select(LedgerJobMonth).where(LedgerJobMonth.job_id.in_({job for job, _ in keys}))
    )
    rows = {(row.job_id, row.month): row for row in found if (row.job_id, row.month) in keys}
    for entry in entries:
        key = (entry.job_id, month_key(entry.end_ms))
        row = rows.get(key)
        if row is None:
            row = rows[key] = LedgerJobMonth(
                job_id=entry.job_id,
                month=key[1],
                tenant=entry.tenant,
                user=entry.user,
                flavor=entry.flavor,
                gpu_ms=0,
                gpu_hour=0,
                cost=0,
                credited=0,
                first_entry=entry.id,
            )
            session.add(row)
        _add_to_month(row, entry)


def _add_to_month(row: LedgerJobMonth, entry: LedgerEntry) -> None:
    """What the statement's ``GROUP BY`` computed, one row at a time."""
    row.user = max(row.user, entry.user)
    row.flavor = max(row.flavor, entry.flavor)
    row.first_entry = min(row.first_entry, entry.id)
    if entry.kind == RUN:
        row.gpu_ms += entry.gpus * (entry.end_ms - entry.start_ms)
        row.gpu_hour = max(row.gpu_hour, entry.gpu_hour)
        row.cost += entry.cost
    else:
        row.credited -= entry.cost


def _roll_up_days(session: Session, entries: Sequence[LedgerEntry]) -> None:
    net: dict[tuple[str, int], int] = {}
    for entry in entries:
        key = (entry.tenant, entry.end_ms // DAY_MS * DAY_MS)
        net[key] = net.get(key, 0) + entry.cost
    found = session.scalars(
        select(LedgerTenantDay).where(
            LedgerTenantDay.tenant.in_({tenant for tenant, _ in net}),
            LedgerTenantDay.day_ms.in_({day for _, day in net}),
        )
    )
    rows = {(row.tenant, row.day_ms): row for row in found}
    for (tenant, day), amount in net.items():
        row = rows.get((tenant, day))
        if row is None:
            session.add(LedgerTenantDay(tenant=tenant, day_ms=day, net=amount))
        else:
            row.net += amount


def accrue(
    session: Session,
    attempts: Sequence[Attempt],
    now: float,
    *,
    min_interval_seconds: float = 0.0,
    full: bool = True,
) -> AccrualReport:
    """Accrue running attempts up to ``now`` and close the ones that ended.

    A ``full`` pass reads every open accrual and accrues every running attempt. Otherwise only
    the attempts that started or ended in this iteration (``Attempt.changed``) are read and
    written, and the attempts that ended outside the loop (a cancel) are found with one query:
    the scheduler loop makes a full pass once per accrual interval, so its other iterations do
    not read thousands of accrual rows for nothing."""
    now_ms = round(now * 1000)
    if not full:
        attempts = [a for a in attempts if a.changed]
    open_rows = _open_rows(session, None if full else [a.job.id for a in attempts])
    ended_elsewhere = [] if full else _ended_outside_the_loop(session)
    if not attempts and not open_rows and not ended_elsewhere:
        return AccrualReport()
    accruer = _Accruer(session, now_ms)
    handled: set[tuple[str, int]] = set()
    for attempt in attempts:
        key = (attempt.job.id, attempt.attempt)
        handled.add(key)
        _accrue_attempt(accruer, attempt, open_rows.get(key), min_interval_seconds)
    leftover = [row for key, row in open_rows.items() if key not in handled]
    leftover += [row for row in ended_elsewhere if (row.job_id, row.attempt) not in handled]
    for job, row in _with_jobs(session, leftover):
        # The attempt ended outside the loop (a user cancelled the job): up to its end.
        if job is None:
            row.closed = True
            continue
        _accrue_attempt(accruer, Attempt(job, row.attempt), row, min_interval_seconds)
    return accruer.settle()


def _open_rows(
    session: Session, job_ids: Sequence[str] | None
) -> dict[tuple[str, int], JobAccrual]:
    """Open accruals: all of them (``job_ids`` ``None``), or those of these jobs."""
    query = select(JobAccrual).where(JobAccrual.closed == false())
    if job_ids is not None:
        if not job_ids:
            return {}
        query = query.where(JobAccrual.job_id.in_(job_ids))
    return {(row.job_id, row.attempt): row for row in session.scalars(query)}


def _ended_outside_the_loop(session: Session) -> list[JobAccrual]:
    """Open accruals whose job is no longer admitted or running (cancelled through the API)."""
    active = [s.value for s in ACTIVE_STATES]
    query = (
        select(JobAccrual)
        .join(Job, Job.id == JobAccrual.job_id)
        .where(JobAccrual.closed == false(), Job.status.not_in(active))
    )
    return list(session.scalars(query))


def _with_jobs(
    session: Session, rows: Sequence[JobAccrual]
) -> Iterable[tuple[Job | None, JobAccrual]]:
    if not rows:
        return []
    jobs = {
        job.id: job
        for job in session.scalars(select(Job).where(Job.id.in_([r.job_id for r in rows])))
    }
    return [(jobs.get(row.job_id), row) for row in rows]


def _accrue_attempt(
    accruer: _Accruer, attempt: Attempt, row: JobAccrual | None, min_interval_seconds: float
) -> None:
    job = attempt.job
    now_ms = accruer.now_ms
    current = job.attempts == attempt.attempt and JobStatus(job.status) in ACTIVE_STATES
    running = current and job.status == JobStatus.RUNNING.value
    if current and not running:
        return  # admitted, its pods not all running yet: accrued from their start once they are
    if row is None:
        start = _start_ms(attempt, running, now_ms)
        if start is None:
            return  # it never ran
        row = JobAccrual(
            job_id=job.id,
            attempt=attempt.attempt,
            started_ms=start,
            accrued_until_ms=start,
            carry=0,
            charged=0,
            closed=False,
        )
        accruer.session.add(row)
    if running:
        if now_ms - row.accrued_until_ms >= min_interval_seconds * 1000:
            accruer.interval(job, row, now_ms)
        return
    end = _end_ms(attempt, now_ms)
    accruer.close(job, row, min(max(end, row.accrued_until_ms), now_ms), evicted=_evicted(attempt))


def _start_ms(attempt: Attempt, running: bool, now_ms: int) -> int | None:
    if attempt.pod_started_at is not None:
        return min(round(attempt.pod_started_at * 1000), now_ms)
    if not running:
        return None
    started = _ms(attempt.job.started_at)
    return now_ms if started is None else min(started, now_ms)


def _end_ms(attempt: Attempt, now_ms: int) -> int:
    if attempt.pod_finished_at is not None:
        return round(attempt.pod_finished_at * 1000)
    job = attempt.job
    finished = _ms(job.finished_at) if job.attempts == attempt.attempt else None
    return now_ms if finished is None else finished


def _evicted(attempt: Attempt) -> bool:
    """Whether the attempt ended because the platform took it away (not the job's doing)."""
    job = attempt.job
    status = JobStatus(job.status)
    if job.attempts > attempt.attempt and status in _EVICTED_STATES:
        return True
    return status is JobStatus.FAILED and job.reason == "RetryLimitExceeded"


# -- reads --------------------------------------------------------------------------------


def job_with_cost(
    session: Session, job_id: str, *, tenants: Sequence[str] | None = None
) -> tuple[Job, int]:
    """The job (as :func:`store.jobs.get`: ``tenants`` restricts visibility) and what it has
    cost so far (all attempts, credited losses deducted), in one query."""
    cost = (
        select(func.coalesce(func.sum(JobAccrual.charged), 0))
        .where(JobAccrual.job_id == Job.id)
        .scalar_subquery()
    )
    row = session.execute(select(Job, cost).where(Job.id == job_id)).one_or_none()
    job = jobs.visible(None if row is None else row[0], job_id, tenants)
    return job, int(0 if row is None else row[1] or 0)


def max_cost(session: Session, job: Job, now: float) -> int | None:
    """``max_runtime_seconds`` at today's price; ``None`` without a time limit."""
    if job.max_runtime_seconds is None:
        return None
    kind = session.scalar(select(Tenant.kind).where(Tenant.name == job.tenant)) or ""
    rate = price_book(session).rate(job.flavor, kind, now)
    return charge(rate, usage_of(job), job.max_runtime_seconds * 1000)[0]


@dataclass(frozen=True, slots=True)
class UsageRow:
    group: dict[str, str]
    jobs: int
    gpu_ms: int
    cpu_milli_ms: int
    memory_mib_ms: int
    lost_gpu_ms: int
    cost: int
    """Charged for run time (micro-credits)."""
    credited: int
    """Credited back for preemption losses (positive micro-credits)."""

    @property
    def net(self) -> int:
        return self.cost - self.credited


def _bounds(start: datetime, end: datetime) -> tuple[int, int]:
    if end <= start:
        raise InvalidRequest("'to' must be after 'from'", field="query.to")
    return round(as_utc(start).timestamp() * 1000), round(as_utc(end).timestamp() * 1000)


def usage_report(
    session: Session,
    start: datetime,
    end: datetime,
    group_by: Sequence[str],
    *,
    tenants: Sequence[str] | None = None,
) -> list[UsageRow]:
    """Ledger rows that ended in [start, end), summed per group (``sreport``)."""
    for name in group_by:
        if name not in GROUPS:
            raise InvalidRequest(
                f"cannot group by {name!r}: choose from {', '.join(GROUPS)}",
                field="query.group_by",
            )
    start_ms, end_ms = _bounds(start, end)
    columns: list[ColumnElement[str]] = [getattr(LedgerEntry, name) for name in group_by]
    duration = LedgerEntry.end_ms - LedgerEntry.start_ms
    is_run = LedgerEntry.kind == RUN

    def run_sum(value: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((is_run, value), else_=0)), 0)

    query = (
        select(
            *columns,
            func.count(func.distinct(LedgerEntry.job_id)),
            run_sum(LedgerEntry.gpus * duration),
            run_sum(LedgerEntry.cpu_milli * duration),
            run_sum((LedgerEntry.memory_bytes // 1048576) * duration),
            func.coalesce(func.sum(case((is_run, 0), else_=LedgerEntry.gpus * duration)), 0),
            run_sum(LedgerEntry.cost),
            func.coalesce(func.sum(case((is_run, 0), else_=-LedgerEntry.cost)), 0),
        )
        .where(LedgerEntry.end_ms >= start_ms, LedgerEntry.end_ms < end_ms)
        .group_by(*columns)
        .order_by(*columns)
    )
    if tenants is not None:
        query = query.where(LedgerEntry.tenant.in_(tenants))
    rows = []
    for row in session.execute(query):
        keys, numbers = row[: len(columns)], [int(v) for v in row[len(columns) :]]
        rows.append(UsageRow(dict(zip(group_by, keys, strict=True)), *numbers))
    return rows


@dataclass(frozen=True, slots=True)
class StatementLine:
    job_id: str
    name: str
    user: str
    flavor: str
    gpu_ms: int
    gpu_hour: int
    """The highest GPU-hour price the job's run time in the month was charged at."""
    cost: int
    credited: int

    @property
    def net(self) -> int:
        return self.cost - self.credited


@dataclass(frozen=True, slots=True)
class Statement:
    tenant: str
    month: str
    lines: list[StatementLine]
    """The lines asked for: all of them, or a window (:func:`statement`'s ``offset``, ``limit``)."""
    jobs: int
    """Lines in the whole month."""
    gpu_ms: int
    cost: int
    credited: int
    wallet_charges: int | None
    """Net of the wallet's charge and refund transactions in the month (positive: spent);
    ``None`` when the tenant has no wallet (not metered)."""

    @property
    def net(self) -> int:
        return self.cost - self.credited


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``2026-11`` -> its first instant and the next month's (UTC)."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = datetime(year, number, 1, tzinfo=UTC)
    except ValueError as error:
        raise InvalidRequest(f"{month!r} is not a month like 2026-11", field="query.month") from (
            error
        )
    days = calendar.monthrange(year, number)[1]
    following = first.replace(day=days).timestamp() + 86400
    return first, datetime.fromtimestamp(following, UTC)


def statement(
    session: Session, tenant: str, month: str, *, offset: int = 0, limit: int | None = None
) -> Statement:
    """One line per job with rows ending in the month (from the roll-up, in the order of the
    jobs' first rows), the month's totals whatever the window, and the wallet's charges then."""
    first, following = month_bounds(month)
    in_month = (LedgerJobMonth.tenant == tenant, LedgerJobMonth.month == first.strftime("%Y-%m"))
    rows = session.execute(
        select(
            LedgerJobMonth.job_id,
            Job.name,
            LedgerJobMonth.user,
            LedgerJobMonth.flavor,
            LedgerJobMonth.gpu_ms,
            LedgerJobMonth.gpu_hour,
            LedgerJobMonth.cost,
            LedgerJobMonth.credited,
        )
        .outerjoin(Job, Job.id == LedgerJobMonth.job_id)
        .where(*in_month)
        .order_by(LedgerJobMonth.first_entry)
        .offset(offset)
        .limit(limit)
    ).all()
    lines = [
        StatementLine(job_id, name or "", user, flavor, gpu, price, cost, credited)
        for job_id, name, user, flavor, gpu, price, cost, credited in rows
    ]
    jobs, gpu_ms, cost, credited = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(LedgerJobMonth.gpu_ms), 0),
            func.coalesce(func.sum(LedgerJobMonth.cost), 0),
            func.coalesce(func.sum(LedgerJobMonth.credited), 0),
        ).where(*in_month)
    ).one()
    charges = _wallet_charges(session, tenant, first, following)
    return Statement(
        tenant, month, lines, int(jobs), int(gpu_ms), int(cost), int(credited), charges
    )


def _wallet_charges(
    session: Session, tenant: str, first: datetime, following: datetime
) -> int | None:
    if session.get(Wallet, tenant) is None:
        return None
    total = session.scalar(
        select(func.coalesce(func.sum(WalletTransaction.amount), 0)).where(
            WalletTransaction.tenant == tenant,
            WalletTransaction.kind.in_(["charge", "refund"]),
            WalletTransaction.at >= first,
            WalletTransaction.at < following,
        )
    )
    return -int(total or 0)


def daily_spend(session: Session, tenant: str, start: datetime, end: datetime) -> dict[int, int]:
    """Net cost (run cost less preemption credits, micro-credits) of the tenant's ledger rows
    per UTC day, for the days that start in [start, end) (from the roll-up):
    ``{day's start in epoch ms: net}``, days without rows left out. Grouped by the rows' end,
    as the statement and the report count them."""
    start_ms, end_ms = _bounds(start, end)
    rows = session.execute(
        select(LedgerTenantDay.day_ms, LedgerTenantDay.net).where(
            LedgerTenantDay.tenant == tenant,
            LedgerTenantDay.day_ms >= start_ms,
            LedgerTenantDay.day_ms < end_ms,
        )
    ).all()
    return {int(day): int(net) for day, net in rows}
