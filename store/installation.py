"""The installation's identity: a random id created with the database.

A scheduler stamps it on every pod it creates and ignores pods stamped with another identity,
so a scheduler pointed at the wrong database can neither adopt nor delete another
installation's pods (see docs/operations.md, "Installation identity").
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.common import utcnow
from store.db import SessionFactory, transaction
from store.models import Installation, Job


def identity(sessions: SessionFactory) -> str:
    """This installation's id (created by migration 0003; re-created if the row was lost)."""
    with transaction(sessions) as session:
        found = session.scalar(select(Installation.id).where(Installation.singleton == 1))
        if found is not None:
            return found
    try:
        with transaction(sessions) as session:
            session.add(Installation(singleton=1, id=uuid.uuid4().hex, created_at=utcnow()))
    except IntegrityError:
        pass  # another process created it first
    with sessions() as session:
        created = session.scalar(select(Installation.id).where(Installation.singleton == 1))
    assert created is not None
    return created


def has_jobs(session: Session) -> bool:
    """Whether the database holds any job at all (an empty one may be the wrong database)."""
    return session.scalar(select(Job.seq).limit(1)) is not None
