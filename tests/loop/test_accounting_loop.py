"""Credit enforcement in the loop, on the embedded cluster and both backends: when a wallet
runs out while jobs run, the tenant's policy lets them finish (default) or stops them; a tenant
out of credit, or one that requires cover for a job's maximum cost, keeps queued jobs waiting
with ``InsufficientCredits``; and the ledger closes every attempt."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from quotas.money import MICRO, Rate
from scheduler.gates import INSUFFICIENT_CREDITS
from scheduler.loop import CREDITS_EXHAUSTED, LoopSettings
from store import jobs, prices, wallets
from store.db import transaction
from store.models import JobAccrual, LedgerEntry
from tests.loop.conftest import Platform, run_until

EVERY_ITERATION = LoopSettings(accrual_interval_seconds=0)


def fund(
    platform: Platform, credits: str, *, on_exhausted: str = "finish", cover: bool = False
) -> None:
    """lab-a (academic, no credit limit) pays 3600 credits per GPU-hour: 1 per GPU-second."""
    with transaction(platform.sessions) as session:
        prices.set_prices(session, [prices.PriceEntry("h100", "academic", Rate(3600 * MICRO))])
        wallets.set_policy(session, "lab-a", on_exhausted=on_exhausted, require_cover=cover)
        wallets.credit(session, "lab-a", "topup", round(float(credits) * MICRO), actor="admin")


def balance(platform: Platform) -> int:
    with platform.sessions() as session:
        return wallets.view(session, "lab-a").balance


@pytest.mark.parametrize(
    ("policy", "outcome", "reason"),
    [("finish", "succeeded", "Succeeded"), ("stop", "failed", CREDITS_EXHAUSTED)],
)
def test_a_wallet_running_out_lets_jobs_finish_or_stops_them(
    platform: Platform, policy: str, outcome: str, reason: str
) -> None:
    fund(platform, "0.3", on_exhausted=policy)
    job_id = platform.submit(seconds=40)  # 2 s of real time at the cluster's time scale
    loop = platform.loop(settings=EVERY_ITERATION)
    run_until(loop, lambda: platform.job(job_id).status == "running")
    run_until(loop, lambda: platform.job(job_id).status in ("succeeded", "failed"))
    job = platform.job(job_id)
    assert (job.status, job.reason) == (outcome, reason)
    with platform.sessions() as session:
        charged = session.scalar(select(func.sum(LedgerEntry.cost))) or 0
        open_attempts = session.scalar(
            select(func.count()).select_from(JobAccrual).where(JobAccrual.closed.is_(False))
        )
    assert open_attempts == 0
    assert balance(platform) == 300_000 - charged < 0
    if policy == "finish":
        assert charged > 1_500_000  # ran on, about 2 s of its GPU, into debt
    else:
        run_until(
            loop,
            lambda: (
                not platform.pods(job_id)
                or all(p["metadata"].get("deletionTimestamp") for p in platform.pods(job_id))
            ),
        )


def test_queued_jobs_wait_for_credit(platform: Platform) -> None:
    fund(platform, "1")
    job_id = platform.submit(seconds=600)  # accepted: there was credit
    with transaction(platform.sessions) as session:
        wallets.credit(session, "lab-a", "adjustment", -1 * MICRO, actor="admin")
    loop = platform.loop(settings=EVERY_ITERATION)
    loop.run_once()
    job = platform.job(job_id)
    assert (job.status, job.reason) == ("queued", INSUFFICIENT_CREDITS)
    assert "no credit left" in job.message
    with transaction(platform.sessions) as session:
        wallets.credit(session, "lab-a", "topup", 5 * MICRO, actor="admin")
    run_until(loop, lambda: platform.job(job_id).status in ("admitted", "running"))


@pytest.mark.parametrize(
    ("max_runtime", "credits", "admitted"),
    [(None, "1000", False), (100, "50", False), (100, "200", True)],
)
def test_cover_admits_only_jobs_whose_maximum_cost_is_covered(
    platform: Platform, max_runtime: int | None, credits: str, admitted: bool
) -> None:
    fund(platform, credits, cover=True)
    job_id = platform.submit(seconds=600, max_runtime_seconds=max_runtime)
    loop = platform.loop(settings=EVERY_ITERATION)
    loop.run_once()
    job = platform.job(job_id)
    if admitted:
        assert job.status == "admitted"
    else:
        assert (job.status, job.reason) == ("queued", INSUFFICIENT_CREDITS)
        expected = "time limit" if max_runtime is None else "maximum cost 100.000 credits"
        assert expected in job.message


def test_between_full_passes_only_attempts_that_start_or_end_are_accrued(
    platform: Platform,
) -> None:
    fund(platform, "1000")
    finishing = platform.submit(seconds=20)  # 1 s of real time
    cancelled = platform.submit(seconds=6000)
    loop = platform.loop(settings=LoopSettings(accrual_interval_seconds=3600))
    run_until(loop, lambda: platform.job(finishing).status == "succeeded")
    assert platform.job(cancelled).status == "running"
    with transaction(platform.sessions) as session:
        jobs.cancel(session, jobs.get(session, cancelled), by="alice")  # outside the loop
    loop.run_once()
    with platform.sessions() as session:
        rows = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()
        still_open = session.scalar(
            select(func.count()).select_from(JobAccrual).where(JobAccrual.closed.is_(False))
        )
    # one row per attempt: opened when it started, closed when it ended, nothing in between
    assert sorted(r.job_id for r in rows) == sorted([finishing, cancelled])
    assert still_open == 0
    assert balance(platform) == 1000 * MICRO - sum(r.cost for r in rows)
