"""The ledger's roll-ups recomputed with ``GROUP BY`` over the ledger itself (the queries the
statement and the spend per day ran before the roll-ups existed): tests compare the two."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from store import ledger
from store.models import LedgerEntry, LedgerJobMonth, LedgerTenantDay

Rows = dict[tuple[Any, ...], tuple[Any, ...]]


def months_from_ledger(session: Session) -> Rows:
    """Per (job, month): tenant, user, flavor, GPU-ms, price, cost, credited, first row id,
    by the statement's former query, run for every month the ledger has rows in."""
    duration = LedgerEntry.end_ms - LedgerEntry.start_ms
    is_run = LedgerEntry.kind == ledger.RUN
    months = {ledger.month_key(end) for end in session.scalars(select(LedgerEntry.end_ms))}
    rows: Rows = {}
    for month in months:
        first, following = ledger.month_bounds(month)
        query = (
            select(
                LedgerEntry.job_id,
                func.max(LedgerEntry.tenant),
                func.max(LedgerEntry.user),
                func.max(LedgerEntry.flavor),
                func.coalesce(func.sum(case((is_run, LedgerEntry.gpus * duration), else_=0)), 0),
                func.max(case((is_run, LedgerEntry.gpu_hour), else_=0)),
                func.coalesce(func.sum(case((is_run, LedgerEntry.cost), else_=0)), 0),
                func.coalesce(func.sum(case((is_run, 0), else_=-LedgerEntry.cost)), 0),
                func.min(LedgerEntry.id),
            )
            .where(
                LedgerEntry.end_ms >= round(first.timestamp() * 1000),
                LedgerEntry.end_ms < round(following.timestamp() * 1000),
            )
            .group_by(LedgerEntry.job_id)
        )
        for job, *sums in session.execute(query):
            rows[(job, month)] = tuple(v if isinstance(v, str) else int(v) for v in sums)
    return rows


def months_rolled_up(session: Session) -> Rows:
    return {
        (r.job_id, r.month): (
            r.tenant,
            r.user,
            r.flavor,
            r.gpu_ms,
            r.gpu_hour,
            r.cost,
            r.credited,
            r.first_entry,
        )
        for r in session.scalars(select(LedgerJobMonth))
    }


def days_from_ledger(session: Session) -> Rows:
    """Per (tenant, UTC day): the net cost, by the spend per day's former query."""
    day = LedgerEntry.end_ms // ledger.DAY_MS
    query = select(LedgerEntry.tenant, day, func.sum(LedgerEntry.cost)).group_by(
        LedgerEntry.tenant, day
    )
    return {
        (tenant, int(index) * ledger.DAY_MS): (int(net),)
        for tenant, index, net in session.execute(query)
    }


def days_rolled_up(session: Session) -> Rows:
    return {(r.tenant, r.day_ms): (r.net,) for r in session.scalars(select(LedgerTenantDay))}


def assert_rollups_match_the_ledger(session: Session) -> None:
    """Both roll-ups equal the ledger's sums, row for row (none missing, none extra)."""
    assert months_rolled_up(session) == months_from_ledger(session)
    assert days_rolled_up(session) == days_from_ledger(session)
