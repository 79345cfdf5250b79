"""The audit log: every administrative change, who made it and when."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from store.common import utcnow
from store.models import AuditEntry


def record(session: Session, actor: str, action: str, target: str, **detail: Any) -> None:
    session.add(AuditEntry(at=utcnow(), actor=actor, action=action, target=target, detail=detail))


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to list: by actor, by action (``tenant`` matches ``tenant.create`` and
    ``tenant.quota.set``; ``tenant.create`` matches only itself) and by time (``since``
    inclusive, ``until`` exclusive)."""

    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.actor is not None:
            clauses.append(AuditEntry.actor == self.actor)
        if self.action is not None:
            # Actions are dotted lowercase words (checked by the API), so no LIKE wildcard.
            clauses.append(
                or_(AuditEntry.action == self.action, AuditEntry.action.like(f"{self.action}.%"))
            )
        if self.since is not None:
            clauses.append(AuditEntry.at >= _utc(self.since))
        if self.until is not None:
            clauses.append(AuditEntry.at < _utc(self.until))
        return clauses


def _utc(moment: datetime) -> datetime:
    """Entries are stored in UTC; a time without zone is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def list_entries(
    session: Session,
    *,
    limit: int,
    before_id: int | None = None,
    where: AuditFilter = AuditFilter(),
) -> Sequence[AuditEntry]:
    query = select(AuditEntry).where(*where.clauses()).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return session.scalars(query).all()
