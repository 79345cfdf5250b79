"""The scheduler's heartbeat: which scheduler leads and when its last cycle committed.

The loop calls :func:`beat` inside each cycle's transaction, so the beat commits exactly when
the cycle's decisions do; a deposed leader's fenced cycle rolls its beat back with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import SchedulerHeartbeat


@dataclass(frozen=True, slots=True)
class Heartbeat:
    holder: str
    beat_at: datetime
    interval_seconds: float
    create_namespaces: bool


def beat(
    session: Session,
    holder: str,
    at: datetime,
    *,
    interval_seconds: float,
    create_namespaces: bool,
) -> None:
    row = session.get(SchedulerHeartbeat, 1)
    if row is None:
        row = SchedulerHeartbeat(singleton=1)
        session.add(row)
    row.holder = holder
    row.beat_at = at
    row.interval_seconds = interval_seconds
    row.create_namespaces = create_namespaces


def last(session: Session) -> Heartbeat | None:
    row = session.scalar(select(SchedulerHeartbeat).where(SchedulerHeartbeat.singleton == 1))
    if row is None:
        return None
    beat_at = row.beat_at if row.beat_at.tzinfo else row.beat_at.replace(tzinfo=UTC)
    return Heartbeat(row.holder, beat_at, row.interval_seconds, row.create_namespaces)
