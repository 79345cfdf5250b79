"""Errors of the embedded cluster.

:class:`ApiError` and its subclasses become ``kind: Status`` responses with the HTTP code and
``reason`` the real API server uses, so clients see exactly the failures they would see in
production. :class:`ClusterConfigError` reports a bad nodes file.
"""

from __future__ import annotations

from typing import Any


class SimError(Exception):
    """Base class of every error raised by :mod:`k8s.sim`."""


class ClusterConfigError(SimError):
    """The nodes file is missing, unreadable or does not follow the documented schema."""


class ApiError(SimError):
    """A failed API request, rendered as a ``Status`` object."""

    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        name: str | None = None,
        group: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.retry_after is not None:
            details["retryAfterSeconds"] = max(1, round(self.retry_after))
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            status["details"] = details
        return status


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Gone(ApiError):
    code = 410
    reason = "Expired"


class UnsupportedMediaType(ApiError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(ApiError):
    code = 422
    reason = "Invalid"


class InjectedFault(ApiError):
    """A failure requested through :class:`k8s.sim.faults.FaultInjector`, with any code."""

    _REASONS = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        410: "Expired",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }

    def __init__(self, code: int, *, retry_after: float | None = None) -> None:
        super().__init__(f"injected fault: HTTP {code}", retry_after=retry_after)
        self.code = code
        self.reason = self._REASONS.get(code, "InternalError")
