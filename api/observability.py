"""Request instrumentation: a request id on every request and log line, and API metrics.

The middleware is plain ASGI (no per-request task switching). The metric label is the route
*template* FastAPI matched (``/v1/jobs/{job_id}``), never the raw path, so label values stay
bounded; unmatched paths are labelled ``<unmatched>``.
"""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.logs import log_context
from scheduler.metrics import METRICS

log = logging.getLogger("yushan.api")
REQUEST_ID_HEADER = b"x-request-id"


class RequestInstrumentation:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(REQUEST_ID_HEADER, b"")
        request_id = incoming.decode("latin-1")[:64] or uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or "<unmatched>"
                METRICS.api_request(
                    template, scope["method"], status, time.perf_counter() - started
                )
