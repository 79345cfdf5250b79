"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from api.problems import ApiProblem
from scheduler.metrics import METRICS, bearer_token_ok
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


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition. The series name tenants and flavors; with
    ``YUSHAN_METRICS_TOKEN`` set only a scraper sending that bearer token may read them."""
    token = request.app.state.settings.metrics_token
    if not bearer_token_ok(request.headers.get("authorization"), token):
        raise ApiProblem(
            401, "/metrics needs the metrics bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    payload, content_type = METRICS.render(request.headers.get("accept", ""))
    return Response(payload, media_type=content_type)
