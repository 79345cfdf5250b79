"""Usage that decays with a half-life (Kueue admission fair sharing, Slurm, KAI).

Past usage is an exponentially weighted average sampled at irregular intervals::

    alpha(dt) = 1 - 0.5 ** (dt / half_life)
    new       = (1 - alpha) * old + alpha * current

For a piecewise-constant ``current`` this is exact whatever the sampling interval, so callers may
update at every event instead of on a fixed tick. A zero or negative half-life is rejected rather
than silently disabling the effect (a pitfall seen in Kueue).
"""

from __future__ import annotations

import math


def _check_half_life(half_life: float) -> None:
    if not half_life > 0 or math.isinf(half_life):
        raise ValueError(f"half-life must be a positive finite number of seconds, got {half_life}")


def alpha(dt: float, half_life: float) -> float:
    """Weight of the current sample after ``dt`` seconds."""
    _check_half_life(half_life)
    if dt < 0:
        raise ValueError(f"time step must not be negative, got {dt}")
    return 1.0 - math.pow(0.5, dt / half_life)


def decay(old: float, current: float, dt: float, half_life: float) -> float:
    """Decayed usage after ``dt`` seconds during which the usage rate was ``current``."""
    weight = alpha(dt, half_life)
    return (1.0 - weight) * old + weight * current


def entry_penalty(request: float, sampling_seconds: float, half_life: float) -> float:
    """Usage charged at admission so that a burst of submissions cannot jump the queue."""
    return alpha(sampling_seconds, half_life) * request
