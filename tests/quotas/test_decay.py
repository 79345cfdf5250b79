"""Decayed usage: the digest's worked example and the guard against a disabled half-life."""

import math

import pytest

from quotas.decay import alpha, decay, entry_penalty

HOUR = 3600.0
HALF_LIFE = 168 * HOUR
SAMPLING = 300.0


def usage_after(half_lives: int) -> float:
    usage = 0.0
    for _ in range(int(half_lives * HALF_LIFE / SAMPLING)):
        usage = decay(usage, 2.0, SAMPLING, HALF_LIFE)
    return usage


@pytest.mark.parametrize(("half_lives", "expected"), [(1, 1.0), (2, 1.5), (3, 1.75)])
def test_constant_usage_from_zero_approaches_the_rate(half_lives: int, expected: float) -> None:
    assert usage_after(half_lives) == pytest.approx(expected, rel=1e-9)


def test_one_big_step_equals_many_small_steps() -> None:
    assert decay(0.0, 2.0, 3 * HALF_LIFE, HALF_LIFE) == pytest.approx(usage_after(3))


def test_usage_halves_after_one_half_life_of_idleness() -> None:
    assert decay(8.0, 0.0, HALF_LIFE, HALF_LIFE) == pytest.approx(4.0)


@pytest.mark.parametrize("half_life", [0.0, -1.0, math.inf, math.nan])
def test_half_life_must_be_positive_and_finite(half_life: float) -> None:
    with pytest.raises(ValueError, match="half-life"):
        decay(1.0, 1.0, 60.0, half_life)


def test_negative_time_step_is_rejected() -> None:
    with pytest.raises(ValueError, match="time step"):
        alpha(-1.0, HALF_LIFE)


def test_entry_penalty_is_alpha_of_the_sampling_interval_times_the_request() -> None:
    assert entry_penalty(8, SAMPLING, HALF_LIFE) == pytest.approx(8 * alpha(SAMPLING, HALF_LIFE))
    assert entry_penalty(8, SAMPLING, HALF_LIFE) > 0
