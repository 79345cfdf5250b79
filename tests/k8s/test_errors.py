"""Error translation and the bounded retry policy, with a fake clock (no real sleeping)."""

from __future__ import annotations

import pytest
import urllib3.connection
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from k8s.errors import (
    ClusterAlreadyExists,
    ClusterConflict,
    ClusterError,
    ClusterForbidden,
    ClusterGone,
    ClusterNotFound,
    ClusterRateLimited,
    ClusterRejected,
    ClusterServerError,
    ClusterUnreachable,
    RetryPolicy,
    call_with_retry,
    error_from_status,
    translate_error,
)


@pytest.mark.parametrize(
    ("status", "reason", "kind", "retryable"),
    [
        (400, "BadRequest", ClusterRejected, False),
        (401, "Unauthorized", ClusterForbidden, False),
        (403, "Forbidden", ClusterForbidden, False),
        (404, "NotFound", ClusterNotFound, False),
        (409, "AlreadyExists", ClusterAlreadyExists, False),
        (409, "Conflict", ClusterConflict, True),
        (410, "Expired", ClusterGone, False),
        (422, "Invalid", ClusterRejected, False),
        (429, "TooManyRequests", ClusterRateLimited, True),
        (500, "InternalError", ClusterServerError, True),
        (503, "ServiceUnavailable", ClusterServerError, True),
        (504, "Timeout", ClusterServerError, True),
    ],
)
def test_status_codes_map_onto_the_hierarchy(
    status: int, reason: str, kind: type[ClusterError], retryable: bool
) -> None:
    body = f'{{"kind": "Status", "reason": "{reason}", "message": "boom"}}'
    error = error_from_status(status, body)
    assert type(error) is kind
    assert error.retryable is retryable
    assert (error.status, error.reason) == (status, reason)
    assert "boom" in str(error)


def test_retry_after_header_is_parsed() -> None:
    error = error_from_status(429, "", {"Retry-After": "3"})
    assert isinstance(error, ClusterRateLimited)
    assert error.retry_after == 3.0


POOL = urllib3.HTTPConnectionPool("127.0.0.1")
CONNECTION = urllib3.connection.HTTPConnection("127.0.0.1")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ApiException(status=0, reason="connection refused"), ClusterUnreachable),
        (ApiException(status=503, reason="down"), ClusterServerError),
        (urllib3.exceptions.ReadTimeoutError(POOL, "/", "read timed out"), ClusterUnreachable),
        (urllib3.exceptions.NewConnectionError(CONNECTION, "refused"), ClusterUnreachable),
        (ConnectionResetError(), ClusterUnreachable),
    ],
)
def test_library_exceptions_are_translated(exc: Exception, kind: type[ClusterError]) -> None:
    assert type(translate_error(exc)) is kind


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Raises the given errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def run(call: Flaky, policy: RetryPolicy, fake: FakeTime) -> str:
    return call_with_retry(call, policy, sleep=fake.sleep, clock=fake.clock, rng=lambda: 1.0)


def test_retryable_errors_are_retried_with_exponential_backoff() -> None:
    fake = FakeTime()
    call = Flaky(*(ClusterServerError("x") for _ in range(3)))
    assert run(call, RetryPolicy(base_delay=0.1, max_delay=10), fake) == "ok"
    assert call.calls == 4
    assert fake.sleeps == pytest.approx([0.1, 0.2, 0.4])


def test_backoff_is_capped() -> None:
    fake = FakeTime()
    call = Flaky(*(ClusterUnreachable("x") for _ in range(5)))
    run(call, RetryPolicy(base_delay=1, max_delay=2, max_attempts=10, deadline=100), fake)
    assert max(fake.sleeps) == 2


def test_retry_after_is_a_lower_bound_capped_by_policy() -> None:
    fake = FakeTime()
    call = Flaky(ClusterRateLimited("slow", retry_after=4), ClusterRateLimited("x", retry_after=99))
    run(call, RetryPolicy(base_delay=0.01, max_retry_after=5, deadline=100), fake)
    assert fake.sleeps == [4, 5]


def test_non_retryable_errors_are_raised_at_once() -> None:
    fake = FakeTime()
    call = Flaky(ClusterForbidden("no"))
    with pytest.raises(ClusterForbidden):
        run(call, RetryPolicy(), fake)
    assert call.calls == 1


def test_attempts_are_bounded() -> None:
    fake = FakeTime()
    call = Flaky(*(ClusterServerError("x") for _ in range(10)))
    with pytest.raises(ClusterServerError):
        run(call, RetryPolicy(max_attempts=3, deadline=100), fake)
    assert call.calls == 3


def test_time_is_bounded_by_the_deadline() -> None:
    fake = FakeTime()
    call = Flaky(*(ClusterRateLimited("x", retry_after=3) for _ in range(10)))
    with pytest.raises(ClusterRateLimited):
        run(call, RetryPolicy(max_attempts=100, deadline=10), fake)
    assert fake.now <= 10


def test_library_errors_are_raised_translated_from_the_original() -> None:
    fake = FakeTime()
    original = ApiException(status=404, reason="NotFound")
    with pytest.raises(ClusterNotFound) as raised:
        run(Flaky(original), RetryPolicy(), fake)
    assert raised.value.__cause__ is original


def test_unrelated_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError):
        run(Flaky(KeyError("bug")), RetryPolicy(), FakeTime())
