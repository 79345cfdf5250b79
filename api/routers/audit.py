"""``/v1/audit``: the log of administrative changes (platform admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminDep, SessionDep
from api.params import CursorQuery
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
) -> AuditPageOut:
    try:
        before = decode_cursor(cursor) if cursor else None
    except ValueError as error:
        raise ApiProblem(
            422, "invalid cursor", errors=[{"field": "query.cursor", "message": "invalid cursor"}]
        ) from error
    entries = audit.list_entries(session, limit=limit + 1, before_id=before)
    items = entries[:limit]
    next_cursor = encode_cursor(items[-1].id) if len(entries) > limit else None
    return AuditPageOut(items=[AuditOut.model_validate(e) for e in items], next_cursor=next_cursor)
