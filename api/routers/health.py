"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from store.migrate import is_current

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(request: Request) -> dict[str, str] | JSONResponse:
    """Ready when the database answers and carries the newest schema revision."""
    engine: Engine = request.app.state.engine
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        migrated = is_current(engine)
    except SQLAlchemyError as error:
        return JSONResponse({"status": "unavailable", "detail": str(error)[:200]}, status_code=503)
    if not migrated:
        return JSONResponse(
            {"status": "unavailable", "detail": "database schema is not migrated"},
            status_code=503,
        )
    return {"status": "ready"}
