"""The OpenAPI document tells the truth about errors, and ``OPTIONS`` about methods.

Every error the API returns is RFC 9457 ``application/problem+json`` (:mod:`api.problems`); the
document says so for each operation (401/403/404/409/413/422 as they apply, replacing FastAPI's
default ``HTTPValidationError``). ``OPTIONS`` on any route answers 204 with an ``Allow`` header
listing every method of that path, and a 405 names them all too (Starlette lists only the
methods of the first route that matched the path).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Input errors, each naming the field (body.gpus, query.limit, ...).",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_DESCRIPTIONS = {
    401: "Missing, invalid, expired or revoked bearer token.",
    403: "The caller's role does not allow this operation.",
    404: "No such object, or not visible to the caller.",
    409: "Conflicts with the current state (exists already, changed concurrently, ...).",
    413: "Request body too large.",
    422: "Invalid input; ``errors`` names each field.",
}
_PUBLIC = {"/healthz", "/readyz"}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                # in the order the routers were included, not the order they are tried in
                routes=getattr(app.state, "documented_routes", app.routes),
            )
            _document_problems(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(AllowedMethods)


def _document_problems(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            statuses = _statuses(path, method, operation)
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses[str(status)] = {"description": _DESCRIPTIONS[status], "content": problem}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    if path in _PUBLIC:
        return []
    statuses = [401, 403, 404, 422]
    if method in ("post", "put", "patch", "delete"):
        statuses.append(409)
    if "requestBody" in operation:
        statuses.append(413)
    return sorted(statuses)


class AllowedMethods:
    """Answer ``OPTIONS`` with every method of the path; give 405s the complete ``Allow``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and (allowed := _allowed(scope)):
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"allow", ", ".join(allowed).encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_allow(message: Message) -> None:
            if (
                message["type"] == "http.response.start"
                and message["status"] == 405
                and (allowed := _allowed(scope))
            ):
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(allowed).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(scope: Scope) -> list[str]:
    """Every method some route fully matches for this path (via the routes' own matching,
    which also sees into included routers)."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", ())
    methods = [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return sorted({*methods, "OPTIONS"}) if methods else []
