"""Cluster errors and the bounded retry policy every API call goes through.

Library exceptions (``kubernetes.client.exceptions.ApiException``, ``urllib3`` errors) never
leave the adapter: :func:`translate_error` maps them onto :class:`ClusterError` subclasses, raised
``from`` the original. Each subclass says whether retrying can help (``retryable``), so the
retry loop needs no status-code tables of its own.

Retries are bounded twice: by a number of attempts and by a wall-clock deadline per call, so an
unreachable cluster costs a caller a few seconds, after which the job simply stays waiting with
the error as its reason. Delays grow exponentially with full jitter; a ``Retry-After`` from the
server is honoured as a lower bound (capped so a hostile value cannot stall the loop).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")


class ClusterError(Exception):
    """Base of every error the adapter raises about the cluster."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


class ClusterUnreachable(ClusterError):
    """No HTTP answer: connection refused or reset, DNS, TLS, or a timeout."""

    retryable = True


class ClusterServerError(ClusterError):
    """A 5xx answer (including 504 timeouts from the API server itself)."""

    retryable = True


class ClusterRateLimited(ClusterError):
    """429 Too Many Requests; ``retry_after`` is the server's hint in seconds, if any."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, status: int = 429):
        super().__init__(message, status=status, reason="TooManyRequests")
        self.retry_after = retry_after


class ClusterConflict(ClusterError):
    """409 Conflict on an update or a transient state (e.g. a namespace being terminated)."""

    retryable = True


class ClusterAlreadyExists(ClusterError):
    """409 AlreadyExists: the create lost to an existing object of that name."""


class ClusterNotFound(ClusterError):
    """404: the object (or its namespace) does not exist."""


class ClusterGone(ClusterError):
    """410 Gone: a watch's resourceVersion is too old; the caller must relist."""


class ClusterForbidden(ClusterError):
    """401/403: the credentials are missing, expired or lack an RBAC permission."""


class ClusterRejected(ClusterError):
    """400/422 or any other client error: the request itself is wrong; retrying cannot help."""


class OwnershipConflict(ClusterError):
    """An object Yushan wants to create exists but belongs to someone (or something) else."""


def _status_body(body: object) -> Mapping[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from_status(
    status: int, body: object, headers: Mapping[str, str] | None = None
) -> ClusterError:
    """The :class:`ClusterError` for an HTTP error answer (status code + Status body)."""
    details = _status_body(body)
    reason = str(details.get("reason") or "") or None
    message = f"HTTP {status}: {details.get('message') or reason or 'no details'}"
    if status == 429:
        return ClusterRateLimited(message, retry_after=_retry_after(headers))
    if status == 409 and reason == "AlreadyExists":
        return ClusterAlreadyExists(message, status=status, reason=reason)
    kinds: dict[int, type[ClusterError]] = {
        401: ClusterForbidden,
        409: ClusterConflict,
        403: ClusterForbidden,
        404: ClusterNotFound,
        410: ClusterGone,
    }
    kind = kinds.get(status)
    if kind is None:
        kind = ClusterServerError if status >= 500 else ClusterRejected
    return kind(message, status=status, reason=reason)


def translate_error(exc: BaseException) -> ClusterError:
    """Map a client-library exception onto the adapter's hierarchy (without raising it)."""
    if isinstance(exc, ClusterError):
        return exc
    if isinstance(exc, ApiException):
        if not exc.status:
            return ClusterUnreachable(f"cluster unreachable: {exc.reason}")
        return error_from_status(int(exc.status), exc.body, exc.headers)
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return ClusterUnreachable(f"cluster unreachable: {type(exc).__name__}: {exc}")
    return ClusterError(f"unexpected client error: {type(exc).__name__}: {exc}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one API call is retried before its error reaches the caller."""

    max_attempts: int = 8
    base_delay: float = 0.05
    max_delay: float = 2.0
    deadline: float = 15.0
    max_retry_after: float = 10.0

    def delay(self, failures: int, error: ClusterError, rng: Callable[[], float]) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        backoff = rng() * min(self.max_delay, self.base_delay * 2.0 ** (failures - 1))
        if isinstance(error, ClusterRateLimited) and error.retry_after is not None:
            return max(backoff, min(error.retry_after, self.max_retry_after))
        return backoff


NO_RETRY = RetryPolicy(max_attempts=1)


def call_with_retry(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> T:
    """Run ``call``, retrying retryable :class:`ClusterError` within the policy's bounds.

    Library exceptions raised by ``call`` are translated first. The last error is re-raised
    when attempts run out or when the next wait would overrun the deadline.
    """
    give_up_at = clock() + policy.deadline
    failures = 0
    while True:
        try:
            return call()
        except Exception as exc:  # translated below; non-client errors are re-raised as is
            error = translate_error(exc)
            if type(error) is ClusterError:
                raise
            failures += 1
            if not error.retryable or failures >= policy.max_attempts:
                _raise(error, exc)
            wait = policy.delay(failures, error, rng)
            if clock() + wait > give_up_at:
                _raise(error, exc)
            sleep(wait)


def _raise(error: ClusterError, cause: BaseException) -> NoReturn:
    if error is cause:
        raise error
    raise error from cause
