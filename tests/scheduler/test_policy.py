"""Policy presets, validation and the requeue backoff schedule."""

from dataclasses import replace
from typing import Any

import pytest

from scheduler.backoff import requeue_delay
from scheduler.policy import Policy


@pytest.mark.parametrize(
    ("name", "kind", "backfill", "preempts"),
    [
        ("fifo", "fifo", False, False),
        ("fair", "fair", False, True),
        ("fair+backfill", "fair", True, True),
    ],
)
def test_named_presets(name: str, kind: str, backfill: bool, preempts: bool) -> None:
    policy = Policy.named(name)
    assert (policy.kind, policy.backfill, policy.preempts) == (kind, backfill, preempts)
    assert policy.half_life_seconds == 7 * 86400


def test_unknown_preset_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        Policy.named("lottery")


@pytest.mark.parametrize(
    "changes",
    [
        {"half_life_seconds": 0.0},
        {"half_life_seconds": -5.0},
        {"usage_sampling_seconds": 0.0},
        {"backoff_base_seconds": 0.0},
        {"backoff_max_seconds": 1.0},
        {"retry_limit": -1},
        {"min_runtime_seconds": -1},
        {"starvation_seconds": 0.0},
    ],
)
def test_invalid_settings_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each setting has its own message
        replace(Policy.named("fair"), **changes)


def test_backoff_doubles_from_60_seconds_until_the_retry_limit() -> None:
    policy = Policy.named("fair")
    delays = [requeue_delay(n, policy) for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, None, None]


def test_backoff_is_capped_at_the_maximum() -> None:
    policy = replace(Policy.named("fair"), retry_limit=10)
    assert [requeue_delay(n, policy) for n in (7, 8, 11)] == [3600, 3600, None]


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        requeue_delay(0, Policy.named("fair"))
