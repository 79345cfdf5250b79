"""Requeue delays for evicted jobs: exponential backoff with a cap and a retry limit (Kueue)."""

from __future__ import annotations

from scheduler.policy import Policy


def requeue_delay(attempts: int, policy: Policy) -> float | None:
    """Seconds to hold back a job evicted for the ``attempts``-th time; ``None`` once it must fail.

    With the defaults: 60, 120, 240, 480, 960, 1920 seconds, then the retry limit is reached.
    """
    if attempts < 1:
        raise ValueError(f"attempts counts evictions and starts at 1, got {attempts}")
    if attempts > policy.retry_limit:
        return None
    delay: float = policy.backoff_base_seconds * 2.0 ** min(attempts - 1, 62)
    return min(delay, policy.backoff_max_seconds)
