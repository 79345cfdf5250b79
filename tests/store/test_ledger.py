"""The usage ledger on both backends: exact charges (TWCC's worked example), idempotent
accrual across rolled-back iterations, preemption losses credited, wallets that always sum,
and reports and statements that agree with the ledger; the roll-ups the statement and the
spend per day read equal to the ledger's ``GROUP BY`` (also as the migration fills them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from quotas.money import MICRO, Rate, Usage, charge, format_credits, parse_credits
from store import jobs, ledger, prices, tenants, users, wallets
from store.common import new_job_id
from store.db import SessionFactory, create_db_engine, session_factory, transaction
from store.errors import NotFound
from store.jobstates import JobStatus
from store.migrate import upgrade
from store.models import LedgerEntry, WalletTransaction
from store.tenants import TENANT, Limits
from tests.conftest import postgres_base_url
from tests.rollups import (
    assert_rollups_match_the_ledger,
    days_from_ledger,
    months_from_ledger,
    months_rolled_up,
)

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC).timestamp()
"""A Tuesday in November 2026, noon UTC."""


@pytest.fixture
def sessions(engine: Engine) -> SessionFactory:
    factory = session_factory(engine)
    with transaction(factory) as session:
        tenants.create_flavor(session, "v100", {}, 4000, 2**30)
        tenants.create_tenant(session, "lab-a", "academic", None, 1.0, "yushan-lab-a")
        tenants.create_tenant(session, "acme", "industry", None, 1.0, "yushan-acme")
        for tenant in ("lab-a", "acme"):
            tenants.set_quota(session, TENANT, tenant, {"v100": {"gpu": Limits(8)}})
        users.create_user(session, "alice")
        prices.set_prices(
            session,
            [
                prices.PriceEntry("v100", "academic", Rate(gpu_hour=82 * MICRO)),
                prices.PriceEntry("v100", "industry", Rate(gpu_hour=120 * MICRO)),
            ],
            effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        )
    return factory


def submit(
    sessions: SessionFactory, tenant: str = "lab-a", gpus: int = 1, checkpoint: int | None = None
) -> str:
    request = jobs.JobRequest(
        tenant=tenant,
        name="train",
        image="pytorch",
        flavor="v100",
        gpus=gpus,
        checkpoint_interval_seconds=checkpoint,
    )
    with transaction(sessions) as session:
        return jobs.submit(session, request, user="alice", job_id=new_job_id()).job.id


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def start(sessions: SessionFactory, job_id: str, seconds: float = 0.0) -> None:
    """Admitted and running at ``T0 + seconds``, accrued as the loop's iteration would."""
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        job.placement = ["node-0"] * job.workers
        jobs.transition(session, job, JobStatus.ADMITTED, "Admitted", at=at(seconds))
        attempt = job.attempts
        jobs.transition(session, job, JobStatus.RUNNING, "Running", at=at(seconds))
        ledger.accrue(session, [ledger.Attempt(job, attempt)], T0 + seconds)


def tick(sessions: SessionFactory, job_id: str, seconds: float) -> None:
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        ledger.accrue(session, [ledger.Attempt(job, job.attempts)], T0 + seconds)


def finish(
    sessions: SessionFactory, job_id: str, seconds: float, pods_finished: float | None = None
) -> None:
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        attempt = job.attempts
        jobs.transition(session, job, JobStatus.SUCCEEDED, "Succeeded", at=at(seconds))
        finished = None if pods_finished is None else T0 + pods_finished
        ledger.accrue(session, [ledger.Attempt(job, attempt, None, finished)], T0 + seconds)


def evict(sessions: SessionFactory, job_id: str, seconds: float) -> None:
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        attempt = job.attempts
        jobs.transition(session, job, JobStatus.PREEMPTED, "Preempted", at=at(seconds))
        job.attempts += 1
        job.placement = None
        jobs.transition(session, job, JobStatus.QUEUED, "Backoff", at=at(seconds))
        ledger.accrue(session, [ledger.Attempt(job, attempt)], T0 + seconds)


def ledger_cost(sessions: SessionFactory, job_id: str, kind: str = ledger.RUN) -> int:
    with sessions() as session:
        total = session.scalar(
            select(func.sum(LedgerEntry.cost)).where(
                LedgerEntry.job_id == job_id, LedgerEntry.kind == kind
            )
        )
        return int(total or 0)


def transactions_sum(sessions: SessionFactory, tenant: str) -> int:
    with sessions() as session:
        total = session.scalar(
            select(func.sum(WalletTransaction.amount)).where(WalletTransaction.tenant == tenant)
        )
        return int(total or 0)


@pytest.mark.parametrize(
    ("text", "micro", "shown"),
    [
        ("82", 82_000_000, "82.000"),
        ("4.305", 4_305_000, "4.305"),
        ("-0.5", -500_000, "-0.500"),
        (12, 12_000_000, "12.000"),
        ("0.000001", 1, "0.000001"),
    ],
)
def test_credits_are_exact_decimals(text: str | int, micro: int, shown: str) -> None:
    assert parse_credits(text) == micro
    assert format_credits(micro) == shown


@pytest.mark.parametrize("bad", ["1.0000001", "abc", "nan", "1e13"])
def test_malformed_credits_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_credits(bad)


def test_the_twcc_worked_example_is_exact_however_it_is_split() -> None:
    rate, usage = Rate(gpu_hour=82 * MICRO), Usage(1, 0, 0)
    assert charge(rate, usage, 189_000) == (4_305_000, 0)
    carry, total = 0, 0
    for _ in range(189):  # one second at a time: each second is 22777.7... micro-credits
        cost, carry = charge(rate, usage, 1000, carry)
        total += cost
    assert total == 4_305_000


def test_a_189_second_run_at_82_per_hour_costs_4_305(sessions: SessionFactory) -> None:
    job_id = submit(sessions)
    start(sessions, job_id, 0)
    for seconds in (15, 30, 47.5, 100):
        tick(sessions, job_id, seconds)
    finish(sessions, job_id, 195, pods_finished=189)  # the pod's own end bounds the interval
    assert ledger_cost(sessions, job_id) == 4_305_000
    with sessions() as session:
        assert ledger.job_with_cost(session, job_id)[1] == 4_305_000
        rows = session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job_id)).all()
    assert sum(r.end_ms - r.start_ms for r in rows) == 189_000
    assert [r.start_ms for r in rows] == sorted({r.start_ms for r in rows})


def test_a_rolled_back_iteration_neither_loses_nor_repeats_an_interval(
    sessions: SessionFactory,
) -> None:
    job_id = submit(sessions)
    start(sessions, job_id, 0)
    tick(sessions, job_id, 60)
    with sessions() as session, session.begin():
        job = jobs.get(session, job_id)
        ledger.accrue(session, [ledger.Attempt(job, job.attempts)], T0 + 120)
        session.flush()
        session.rollback()  # the iteration failed (conflict, lost leadership, crash)
    tick(sessions, job_id, 120)
    tick(sessions, job_id, 120)  # the same instant again: nothing more
    assert ledger_cost(sessions, job_id) == charge(Rate(82 * MICRO), Usage(1, 0, 0), 120_000)[0]
    with sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.job_id == job_id)
        )
    assert count == 2


@pytest.mark.parametrize(
    ("checkpoint", "lost_seconds"),
    [(None, 150), (60, 30), (75, 0)],
)
def test_work_lost_to_preemption_is_credited_back(
    sessions: SessionFactory, checkpoint: int | None, lost_seconds: int
) -> None:
    with transaction(sessions) as session:
        wallets.credit(session, "lab-a", "topup", 100 * MICRO, actor="admin")
    job_id = submit(sessions, checkpoint=checkpoint)
    start(sessions, job_id, 0)
    tick(sessions, job_id, 100)
    evict(sessions, job_id, 150)
    run = charge(Rate(82 * MICRO), Usage(1, 0, 0), 150_000)[0]
    credited = charge(Rate(82 * MICRO), Usage(1, 0, 0), lost_seconds * 1000)[0]
    assert ledger_cost(sessions, job_id) == run
    assert ledger_cost(sessions, job_id, ledger.PREEMPTION_LOSS) == -credited
    with sessions() as session:
        view = wallets.view(session, "lab-a")
        job, cost = ledger.job_with_cost(session, job_id, tenants=["lab-a"])
        assert (job.id, cost) == (job_id, run - credited)
        with pytest.raises(NotFound):
            ledger.job_with_cost(session, job_id, tenants=["acme"])
        with pytest.raises(NotFound):
            ledger.job_with_cost(session, "jnosuchjob")
    assert view.balance == 100 * MICRO - run + credited
    assert transactions_sum(sessions, "lab-a") == view.balance
    unstarted = submit(sessions)
    with sessions() as session:
        assert ledger.job_with_cost(session, unstarted)[1] == 0


def test_wallet_charges_member_budgets_and_statement_agree(sessions: SessionFactory) -> None:
    with transaction(sessions) as session:
        wallets.credit(session, "acme", "topup", 50 * MICRO, actor="admin")
        wallets.set_member_budget(session, "acme", "alice", 10 * MICRO)
    first, second = submit(sessions, "acme", gpus=2), submit(sessions, "acme")
    start(sessions, first, 0)
    start(sessions, second, 30)
    tick(sessions, first, 90)  # the other running attempt is accrued with it
    finish(sessions, second, 1830, pods_finished=1830)
    finish(sessions, first, 3600)
    cost_first = charge(Rate(120 * MICRO), Usage(2, 0, 0), 3_600_000)[0]
    cost_second = charge(Rate(120 * MICRO), Usage(1, 0, 0), 1_800_000)[0]
    with sessions() as session:
        view = wallets.view(session, "acme")
        statement = ledger.statement(session, "acme", "2026-11")
        report = ledger.usage_report(session, at(-60), at(7200), ["tenant", "user"])
        empty = ledger.statement(session, "acme", "2026-10")
    assert view.balance == 50 * MICRO - cost_first - cost_second == 50_000_000 - 300_000_000
    assert transactions_sum(sessions, "acme") == view.balance
    assert view.members[0].spent == cost_first + cost_second
    assert [line.job_id for line in statement.lines] == [first, second]
    assert [line.gpu_ms for line in statement.lines] == [7_200_000, 1_800_000]
    assert statement.net == statement.wallet_charges == cost_first + cost_second
    assert [(r.group, r.gpu_ms, r.cost, r.jobs) for r in report] == [
        ({"tenant": "acme", "user": "alice"}, 9_000_000, cost_first + cost_second, 2)
    ]
    assert empty.lines == []
    assert empty.wallet_charges == 0


def test_an_unmetered_tenant_is_ledgered_but_never_charged(sessions: SessionFactory) -> None:
    job_id = submit(sessions)
    start(sessions, job_id, 0)
    finish(sessions, job_id, 3600)
    assert ledger_cost(sessions, job_id) == 82 * MICRO
    with sessions() as session:
        assert not wallets.view(session, "lab-a").metered
        assert session.scalar(select(func.count()).select_from(WalletTransaction)) == 0
        statement = ledger.statement(session, "lab-a", "2026-11")
    assert statement.net == 82 * MICRO
    assert statement.wallet_charges is None


def test_a_price_change_applies_from_its_instant(sessions: SessionFactory) -> None:
    with transaction(sessions) as session:
        prices.set_prices(
            session,
            [prices.PriceEntry("v100", "academic", Rate(gpu_hour=100 * MICRO))],
            effective_from=at(1800),
        )
    job_id = submit(sessions)
    start(sessions, job_id, 0)
    tick(sessions, job_id, 1800)
    finish(sessions, job_id, 3600)
    assert ledger_cost(sessions, job_id) == 41 * MICRO + 50 * MICRO
    assert format_credits(ledger_cost(sessions, job_id)) == "91.000"


def test_an_admitted_attempt_whose_pods_started_is_accrued_from_their_start_once_it_runs(
    sessions: SessionFactory,
) -> None:
    job_id = submit(sessions)
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        job.placement = ["node-0"]
        jobs.transition(session, job, JobStatus.ADMITTED, "Admitted", at=at(0))
        # one worker of the gang started at +5 s; the job is still admitted at +10 s
        ledger.accrue(session, [ledger.Attempt(job, 0, T0 + 5)], T0 + 10)
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        jobs.transition(session, job, JobStatus.RUNNING, "Running", at=at(20))
        ledger.accrue(session, [ledger.Attempt(job, 0, T0 + 5)], T0 + 20)
    with sessions() as session:
        rows = session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job_id)).all()
    assert [(r.start_ms - round(T0 * 1000), r.end_ms - round(T0 * 1000)) for r in rows] == [
        (5000, 20000)
    ]


def postgres_schema(schema: str) -> str:
    """A URL of a new, empty schema of the test PostgreSQL server."""
    with create_engine(make_url(postgres_base_url())).begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_base_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def drop_postgres_schema(schema: str) -> None:
    with create_engine(make_url(postgres_base_url())).begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


MONTH_END = datetime(2026, 12, 1, tzinfo=UTC).timestamp() - T0
"""Seconds from ``T0`` to the end of November."""


def lines_from_ledger(session: Session, tenant: str, month: str) -> list[tuple[Any, ...]]:
    """The month's statement lines by the former ``GROUP BY``, in the order of the jobs' first
    rows: (job, user, flavor, GPU-ms, price, cost, credited)."""
    found = [
        (sums[7], job, *sums[1:7])
        for (job, in_month), sums in months_from_ledger(session).items()
        if in_month == month and sums[0] == tenant
    ]
    return [line[1:] for line in sorted(found)]


def as_row(line: ledger.StatementLine) -> tuple[Any, ...]:
    return (
        line.job_id,
        line.user,
        line.flavor,
        line.gpu_ms,
        line.gpu_hour,
        line.cost,
        line.credited,
    )


def test_the_rollups_equal_the_ledger_across_rollbacks_losses_late_closes_and_month_ends(
    sessions: SessionFactory,
) -> None:
    with transaction(sessions) as session:
        wallets.credit(session, "lab-a", "topup", 100 * MICRO, actor="admin")
    crossing, late, other = submit(sessions, gpus=2), submit(sessions), submit(sessions, "acme")
    start(sessions, crossing, MONTH_END - 120)
    start(sessions, late, MONTH_END - 600)
    start(sessions, other, 0)
    tick(sessions, crossing, MONTH_END - 60)
    finish(sessions, other, 3600)
    with sessions() as session, session.begin():
        job = jobs.get(session, crossing)
        ledger.accrue(session, [ledger.Attempt(job, job.attempts)], T0 + MONTH_END + 30)
        session.flush()
        session.rollback()  # the iteration failed after writing its rows and roll-ups
    tick(sessions, crossing, MONTH_END + 30)
    tick(sessions, crossing, MONTH_END + 30)  # accrued again at the same instant: nothing
    # Its pods ended in November; the loop sees it in December: a row for a closed month.
    finish(sessions, late, MONTH_END + 10, pods_finished=MONTH_END - 5)
    evict(sessions, crossing, MONTH_END + 90)  # a preemption loss, credited back
    start(sessions, crossing, MONTH_END + 200)
    tick(sessions, crossing, MONTH_END + 400)

    with sessions() as session:
        assert ledger_cost(sessions, crossing, ledger.PREEMPTION_LOSS) < 0
        assert_rollups_match_the_ledger(session)
        for tenant, month in (("lab-a", "2026-11"), ("lab-a", "2026-12"), ("acme", "2026-11")):
            statement = ledger.statement(session, tenant, month)
            expected = lines_from_ledger(session, tenant, month)
            assert [as_row(line) for line in statement.lines] == expected
            assert statement.jobs == len(expected)
            assert statement.cost == sum(line[5] for line in expected)
            assert statement.credited == sum(line[6] for line in expected)
        assert [line.job_id for line in ledger.statement(session, "lab-a", "2026-11").lines] == [
            crossing,
            late,
        ]
        spend = ledger.daily_spend(session, "lab-a", at(-43200), at(MONTH_END + 86400))
        days = days_from_ledger(session).items()
        assert spend == {day: net for (tenant, day), (net,) in days if tenant == "lab-a"}
        december = ledger.statement(session, "lab-a", "2026-12")
    assert december.wallet_charges == december.net  # metered all month: they agree


def test_a_window_of_statement_lines_keeps_the_whole_months_totals(
    sessions: SessionFactory,
) -> None:
    job_ids = [submit(sessions, gpus=gpus) for gpus in (1, 2, 4)]
    for job_id in job_ids:
        start(sessions, job_id, 0)
        finish(sessions, job_id, 600)
    with sessions() as session:
        whole = ledger.statement(session, "lab-a", "2026-11")
        window = ledger.statement(session, "lab-a", "2026-11", offset=1, limit=1)
    assert [line.job_id for line in whole.lines] == job_ids
    assert window.lines == whole.lines[1:2]
    assert (window.jobs, window.gpu_ms, window.cost, window.credited) == (
        3,
        7 * 600_000,
        whole.cost,
        whole.credited,
    )
    assert whole.cost == sum(line.cost for line in whole.lines)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migration_rolls_up_the_ledger_already_written(backend: str, tmp_path: Path) -> None:
    """Rows written under revision 0006 (two months, a preemption loss, two prices) are in
    the roll-ups after the upgrade, as the ``GROUP BY`` sums them."""
    schema = f"yushan_migration_{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else postgres_schema(schema)
    upgrade(url, "0006_accounting")
    engine = create_db_engine(url)
    end = round((T0 + MONTH_END) * 1000)
    rows = [
        ("jaaaaaaaa1", "run", "lab-a", end - 7_200_000, end - 3_600_000, 82, 400),
        ("jaaaaaaaa1", "run", "lab-a", end - 3_600_000, end + 60_000, 90, 500),
        ("jaaaaaaaa1", "preemption_loss", "lab-a", end, end + 60_000, 90, -20),
        ("jbbbbbbbb2", "run", "acme", end - 86_400_000, end - 1, 120, 900),
    ]
    with engine.begin() as connection:
        connection.execute(
            insert(LedgerEntry),
            [
                {
                    "job_id": job,
                    "attempt": 0,
                    "kind": kind,
                    "tenant": tenant,
                    "user": "alice",
                    "flavor": "v100",
                    "start_ms": low,
                    "end_ms": high,
                    "gpus": 2,
                    "cpu_milli": 0,
                    "memory_bytes": 0,
                    "gpu_hour": price * MICRO,
                    "cost": cost,
                    "charged_to_wallet": True,
                }
                for job, kind, tenant, low, high, price, cost in rows
            ],
        )
    upgrade(url)
    try:
        with session_factory(engine)() as session:
            assert len(months_rolled_up(session)) == 3
            assert_rollups_match_the_ledger(session)
    finally:
        engine.dispose()
        if backend == "postgres":
            drop_postgres_schema(schema)
