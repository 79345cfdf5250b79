"""``/v1/audit``: the log of administrative changes (platform admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminDep, SessionDep
from api.params import ActionQuery, CursorQuery, UserQuery
from api.problems import ApiProblem
from api.schemas import AuditOut, AuditPageOut
from store import audit
from store.common import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("")
def list_audit(
    session: SessionDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: CursorQuery = None,
    actor: UserQuery = None,
    action: ActionQuery = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> AuditPageOut:
    """Newest first. ``actor``: who made the change; ``action``: ``tenant`` matches every
    ``tenant.*`` action, ``tenant.quota.set`` only itself; ``since`` (inclusive) and ``until``
    (exclusive): ISO 8601 times, UTC when they carry no zone."""
    try:
        before = decode_cursor(cursor) if cursor else None
    except ValueError as error:
        raise ApiProblem(
            422, "invalid cursor", errors=[{"field": "query.cursor", "message": "invalid cursor"}]
        ) from error
    where = audit.AuditFilter(actor=actor, action=action, since=since, until=until)
    entries = audit.list_entries(session, limit=limit + 1, before_id=before, where=where)
    items = entries[:limit]
    next_cursor = encode_cursor(items[-1].id) if len(entries) > limit else None
    return AuditPageOut(items=[AuditOut.model_validate(e) for e in items], next_cursor=next_cursor)
