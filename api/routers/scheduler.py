"""``/v1/scheduler``: is a scheduler alive, which one leads, in which namespace mode.

Read from the heartbeat the leading scheduler commits with every cycle (:mod:`store.heartbeat`).
The scheduler is reported alive while its last cycle is younger than :data:`STALE_AFTER`
intervals (at least :data:`STALE_FLOOR_SECONDS`): it cycles at least once per interval even when
nothing happens, so a silent scheduler is a dead or stuck one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import PrincipalDep, SessionDep
from store import heartbeat

router = APIRouter(prefix="/v1/scheduler", tags=["cluster"])
STALE_AFTER = 3
STALE_FLOOR_SECONDS = 60.0


class SchedulerOut(BaseModel):
    alive: bool
    leader: str | None
    last_cycle_at: datetime | None
    seconds_since_last_cycle: float | None
    interval_seconds: float | None
    create_tenant_namespaces: bool | None


@router.get("")
def get_scheduler(session: SessionDep, _: PrincipalDep) -> SchedulerOut:
    beat = heartbeat.last(session)
    if beat is None:
        return SchedulerOut(
            alive=False,
            leader=None,
            last_cycle_at=None,
            seconds_since_last_cycle=None,
            interval_seconds=None,
            create_tenant_namespaces=None,
        )
    age = max(0.0, (datetime.now(UTC) - beat.beat_at).total_seconds())
    return SchedulerOut(
        alive=age <= max(STALE_AFTER * beat.interval_seconds, STALE_FLOOR_SECONDS),
        leader=beat.holder,
        last_cycle_at=beat.beat_at,
        seconds_since_last_cycle=round(age, 3),
        interval_seconds=beat.interval_seconds,
        create_tenant_namespaces=beat.create_namespaces,
    )
