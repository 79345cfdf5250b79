"""A cheap version of the state the scheduler's queue explanation reads.

The explanation (``GET /v1/tenants/{name}/queue``, the portal's queue fragment) reads the queued
and running jobs, the quota tree, decayed usage, the stored nodes and the queue controls. Every
write to those already leaves a trace in an append-only or rewritten row:

- a job submitted, cancelled, held, released or edited writes a job event (and so does every
  transition the scheduler makes);
- an admin change (quota, tenant, cohort, flavor, stop policy, per-user limits, wallet top-up
  or policy, prices) writes an audit entry;
- the scheduler's iteration (admissions, queue positions and reasons, usage decay, inventory,
  wallet charges) rewrites the heartbeat in its own transaction.

So the newest job event, the newest audit entry and the heartbeat's time, read in one query of
three index look-ups, change whenever the explanation's inputs do. Caveat: PostgreSQL hands out
ids when rows are inserted, not when they commit, so a transaction that inserted an older id and
commits after a newer one leaves the version unchanged; it wakes the scheduler
(:mod:`store.notify`), whose next iteration rewrites the heartbeat.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import AuditEntry, JobEvent, SchedulerHeartbeat

QueueVersion = tuple[int | None, int | None, datetime | None]


def queue_version(session: Session) -> QueueVersion:
    """Read it before the state it stands for (in the same transaction): what is then read is
    at least as new as the version, so an answer cached under it is never older than it."""
    newest_event = select(func.max(JobEvent.id)).scalar_subquery()
    newest_audit = select(func.max(AuditEntry.id)).scalar_subquery()
    beat = select(SchedulerHeartbeat.beat_at).where(SchedulerHeartbeat.singleton == 1)
    event, audit, beat_at = session.execute(
        select(newest_event, newest_audit, beat.scalar_subquery())
    ).one()
    return event, audit, beat_at
