"""RFC 9457 problem details for every error the API returns.

Each error is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and,
for input errors, ``errors``: a list of ``{field, message}`` naming exactly what was wrong
(``body.gpus``, ``query.limit``, ``header.Idempotency-Key``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from store.errors import (
    AlreadyExists,
    Conflict,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    StoreError,
)

log = logging.getLogger("yushan.api")
PROBLEM_JSON = "application/problem+json"
UNVALIDATED_VALUE = "https://yushan.dev/problems/unvalidated-value"
"""The type of a 422 the database raised rather than the schemas: a validation bound is
missing (the fuzzer treats it as a failure)."""
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiProblem(Exception):
    """Raised by routes and dependencies to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
    problem_type: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type or f"https://yushan.dev/problems/{status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(location: Sequence[Any]) -> str:
    return ".".join(str(part) for part in location)


def _validation_errors(error: RequestValidationError) -> tuple[int, list[dict[str, str]]]:
    errors: list[dict[str, str]] = []
    status = 422
    for item in error.errors():
        if item.get("type") == "json_invalid":
            status = 400
            errors.append({"field": "body", "message": f"malformed JSON: {item.get('msg')}"})
            continue
        message = str(item.get("msg", "invalid value"))
        if item.get("type") == "extra_forbidden":
            message = "unknown field"
        errors.append({"field": _field_path(item.get("loc", ())), "message": message})
    return status, errors


def _store_status(error: StoreError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, AlreadyExists | Conflict):
        return 409
    if isinstance(error, InvalidRequest):
        return 422
    if isinstance(error, LimitExceeded):
        return 429
    return 500


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, error: RequestValidationError) -> JSONResponse:
        status, errors = _validation_errors(error)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(status, detail, instance=request.url.path, errors=errors)

    @app.exception_handler(ApiProblem)
    async def _on_problem(request: Request, error: ApiProblem) -> JSONResponse:
        return problem_response(
            error.status,
            error.detail,
            instance=request.url.path,
            errors=error.errors,
            headers=error.headers,
        )

    @app.exception_handler(StoreError)
    async def _on_store_error(request: Request, error: StoreError) -> JSONResponse:
        errors = [{"field": error.field, "message": error.message}] if error.field else []
        return problem_response(
            _store_status(error), error.message, instance=request.url.path, errors=errors
        )

    @app.exception_handler(DataError)
    async def _on_data_error(request: Request, error: DataError) -> JSONResponse:
        # Defence in depth: the schemas bound every string and number the API stores, so this
        # means a bound is missing. The transaction was rolled back; answer 422, not 500.
        log.warning("database refused a value: %s", str(error.orig)[:200])
        return problem_response(
            422,
            "a value is out of range or contains characters the database cannot store",
            instance=request.url.path,
            problem_type=UNVALIDATED_VALUE,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            error.status_code,
            str(error.detail),
            instance=request.url.path,
            headers=dict(error.headers) if error.headers else None,
        )
