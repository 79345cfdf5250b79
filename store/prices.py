"""The price list: effective-dated hourly prices per flavor and tenant kind.

Rows are never updated: a new price for a (flavor, kind) is a new row with a later
``effective_from``, so past intervals keep the price they were charged at and a statement can
be recomputed. :class:`PriceBook` answers "what did this cost at that instant" from the rows,
loaded once per scheduler iteration (the table is small).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from quotas.money import Rate
from store.common import as_utc, utcnow
from store.errors import InvalidRequest
from store.models import Price

POSTPAID_KINDS = frozenset({"academic", "government"})
"""Kinds that use first and pay after: their wallets may go down to their credit limit."""


@dataclass(frozen=True, slots=True)
class PriceEntry:
    flavor: str
    tenant_kind: str
    rate: Rate


class PriceBook:
    """Every price row, by (flavor, tenant kind), ordered by ``effective_from``."""

    def __init__(self, rows: Sequence[Price]) -> None:
        self._starts: dict[tuple[str, str], list[float]] = {}
        self._rates: dict[tuple[str, str], list[Rate]] = {}
        for row in sorted(rows, key=lambda r: as_utc(r.effective_from)):
            key = (row.flavor, row.tenant_kind)
            self._starts.setdefault(key, []).append(as_utc(row.effective_from).timestamp())
            self._rates.setdefault(key, []).append(
                Rate(row.gpu_hour, row.cpu_hour, row.memory_gib_hour)
            )

    def rate(self, flavor: str, tenant_kind: str, at: float) -> Rate:
        """The rate in effect at ``at`` (epoch seconds); zero when none is (not priced)."""
        starts = self._starts.get((flavor, tenant_kind))
        if not starts:
            return Rate()
        index = bisect.bisect_right(starts, at) - 1
        return self._rates[(flavor, tenant_kind)][index] if index >= 0 else Rate()


def price_book(session: Session) -> PriceBook:
    return PriceBook(session.scalars(select(Price)).all())


def set_prices(
    session: Session, entries: Sequence[PriceEntry], *, effective_from: datetime | None = None
) -> datetime:
    """Add a price for each entry from ``effective_from`` (default now) on; an entry for the
    same (flavor, kind, instant) replaces the one stored. Returns the instant."""
    start = as_utc(effective_from) if effective_from is not None else utcnow()
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        key = (entry.flavor, entry.tenant_kind)
        if key in seen:
            raise InvalidRequest(
                f"flavor {entry.flavor!r} and tenant kind {entry.tenant_kind!r} appear twice",
                field=f"body.prices.{index}",
            )
        seen.add(key)
        existing = session.scalar(
            select(Price).where(
                Price.flavor == entry.flavor,
                Price.tenant_kind == entry.tenant_kind,
                Price.effective_from == start,
            )
        )
        row = existing or Price(
            flavor=entry.flavor, tenant_kind=entry.tenant_kind, effective_from=start
        )
        row.gpu_hour = entry.rate.gpu_hour
        row.cpu_hour = entry.rate.cpu_hour
        row.memory_gib_hour = entry.rate.memory_gib_hour
        session.add(row)
    session.flush()
    return start


def prices_in_effect(session: Session, at: datetime | None = None) -> list[Price]:
    """The row in effect for every (flavor, kind) at ``at`` (default now), by flavor and kind."""
    instant = as_utc(at) if at is not None else utcnow()
    latest: dict[tuple[str, str], Price] = {}
    for row in session.scalars(select(Price).order_by(Price.effective_from)):
        if as_utc(row.effective_from) <= instant:
            latest[(row.flavor, row.tenant_kind)] = row
    return [latest[key] for key in sorted(latest)]


def price_history(session: Session) -> list[Price]:
    return list(
        session.scalars(
            select(Price).order_by(Price.flavor, Price.tenant_kind, Price.effective_from)
        )
    )
