"""RFC 9457 problem details for every error the API returns.

Each error is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and,
for input errors, ``errors``: a list of ``{field, message}`` naming exactly what was wrong
(``body.gpus``, ``query.limit``, ``header.Idempotency-Key``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
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
    PaymentRequired,
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
    402: "Payment Required",
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
    extensions: Mapping[str, Any] | None = None,
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
    body.update(extensions or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_VALIDATOR_STEP = re.compile(r"^(function-(after|before|wrap|plain)\[.*\]|constrained-\w+)$")
"""Names pydantic gives the members of a union in an error's location: validator internals,
never a field the caller wrote, so they are left out of the field path."""


def _field_path(location: Sequence[Any]) -> str:
    return ".".join(str(part) for part in location if not _VALIDATOR_STEP.match(str(part)))


_WHOLE_NUMBER_ERRORS = frozenset({"int_type", "int_parsing", "int_from_float"})
_PLAIN_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "string_pattern_mismatch": "has characters or a form that is not allowed",
    "datetime_parsing": "must be a date and time (ISO 8601)",
    "datetime_type": "must be a date and time (ISO 8601)",
}
_BOUND_MESSAGES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "string_too_long": "must be at most {max_length} characters",
    "too_long": "must have at most {max_length} entries",
    "too_short": "must have at least {min_length} entries",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
}


def friendly_message(item: Mapping[str, Any]) -> str:
    """A pydantic error as a person would say it, without validator internals."""
    kind = str(item.get("type", ""))
    context = dict(item.get("ctx") or {})
    if kind in _WHOLE_NUMBER_ERRORS:
        return "must be a whole number"
    given = item.get("input")
    if kind == "greater_than_equal" and isinstance(given, int) and not isinstance(given, bool):
        # Every ``ge`` bound in the schemas is on an integer field (floats use ``gt``).
        return f"must be a whole number >= {context.get('ge')}"
    if kind == "string_too_short":
        minimum = int(context.get("min_length", 1))
        return "must not be empty" if minimum <= 1 else f"must be at least {minimum} characters"
    if kind in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[kind]
    if kind in _BOUND_MESSAGES:
        try:
            return _BOUND_MESSAGES[kind].format(**context)
        except (KeyError, IndexError):
            pass
    message = str(item.get("msg", "invalid value"))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _validation_errors(error: RequestValidationError) -> tuple[int, list[dict[str, str]]]:
    errors: list[dict[str, str]] = []
    status = 422
    for item in error.errors():
        if item.get("type") == "json_invalid":
            status = 400
            errors.append({"field": "body", "message": f"malformed JSON: {item.get('msg')}"})
            continue
        location = item.get("loc", ())
        errors.append({"field": _field_path(location), "message": friendly_message(item)})
    return status, errors


def store_status(error: StoreError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, AlreadyExists | Conflict):
        return 409
    if isinstance(error, InvalidRequest):
        return 422
    if isinstance(error, LimitExceeded):
        return 429
    if isinstance(error, PaymentRequired):
        return 402
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
        # A 402 names the remaining balance (RFC 9457 extension member), as TWCC's refusal does.
        extra = {"balance": error.balance} if isinstance(error, PaymentRequired) else None
        return problem_response(
            store_status(error),
            error.message,
            instance=request.url.path,
            errors=errors,
            extensions=extra,
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
