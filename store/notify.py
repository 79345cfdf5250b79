"""Telling the scheduler that jobs (or the quotas they are admitted against) changed.

:func:`signal_job_changes` hooks a session factory (the API's): a transaction that inserted or
changed a job, a job event (every submission and cancel writes one), a quota, tenant, cohort,
flavor or per-user limit signals, once per transaction and only if it commits:

* on PostgreSQL with ``NOTIFY yushan_jobs`` inside the transaction, which the server delivers
  to listeners (:mod:`scheduler.wakeup`) at commit and drops on rollback, so a scheduler in
  another process wakes within milliseconds;
* in-process through ``callback`` after the commit (``yushan serve``, where the API and the
  loop share a process, on SQLite as on PostgreSQL).

The scheduler's own sessions are not hooked: its writes must not wake itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from store.db import SessionFactory
from store.models import Cohort, Flavor, Job, JobEvent, QuotaEntry, Tenant, UserLimit

CHANNEL = "yushan_jobs"
_FLAG = "yushan_jobs_changed"
_NOTIFIED = "yushan_jobs_notified"
_WATCHED = (Job, JobEvent, QuotaEntry, Tenant, Cohort, Flavor, UserLimit)
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")


def signal_job_changes(factory: SessionFactory, callback: Callable[[], None] | None = None) -> None:
    """Install the signal on every session ``factory`` makes (see the module docstring)."""

    @event.listens_for(factory, "after_flush")
    def _after_flush(session: Session, _context: Any) -> None:
        touched = (*session.new, *session.dirty, *session.deleted)
        if any(isinstance(obj, _WATCHED) for obj in touched):
            jobs_changed(session)

    @event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        changed = session.info.pop(_FLAG, False)
        session.info.pop(_NOTIFIED, None)
        if changed and callback is not None:
            callback()

    @event.listens_for(factory, "after_soft_rollback")
    def _after_rollback(session: Session, _previous: Any) -> None:
        # A NOTIFY sent inside a rolled-back savepoint is gone: send it again if needed.
        session.info.pop(_NOTIFIED, None)
        if not session.in_transaction():
            session.info.pop(_FLAG, None)


def jobs_changed(session: Session) -> None:
    """Signal a change the ORM's flush does not see (rows written with Core statements, like a
    group commit's jobs): NOTIFY once in the transaction on PostgreSQL, and the in-process
    callback after the commit, when the factory was hooked by :func:`signal_job_changes`."""
    session.info[_FLAG] = True
    connection = session.connection()
    if connection.dialect.name == "postgresql" and not session.info.get(_NOTIFIED):
        session.info[_NOTIFIED] = True
        connection.execute(_NOTIFY)
