"""Geometry of the portal's SVG charts, computed on the server (no chart library, no script).

Pure functions from numbers to coordinates; the templates draw them (``macros.html``), with a
``<title>`` and a text equivalent next to each chart.

- :class:`QuotaBar`: a tenant's GPUs in use against its nominal quota and borrowing ceiling.
- :func:`decayed_usage_series`: a tenant's decayed GPU usage over time, reconstructed from its
  jobs' run intervals with the scheduler's half-life (the same decay the scheduler applies:
  each GPU-second counts ``2 ** (-age / half_life)``).
- :func:`gpu_grid`: nodes x GPUs, each GPU marked with the tenant whose job holds it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

BAR_WIDTH = 300
PALETTE = (
    "#1f77b4",
    "#d95f02",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e7298a",
    "#666666",
    "#b8860b",
    "#17becf",
    "#7570b3",
)
"""Tenant colours (each at least 3:1 against white); the legend names every tenant in text."""


@dataclass(frozen=True, slots=True)
class QuotaBar:
    flavor: str
    used: int
    nominal: int
    borrowing_limit: int | None
    """``None``: may borrow without limit (the bar then ends at what is in use or nominal)."""

    @property
    def ceiling(self) -> int | None:
        return None if self.borrowing_limit is None else self.nominal + self.borrowing_limit

    @property
    def scale(self) -> int:
        return max(self.used, self.nominal, self.ceiling or 0, 1)

    def x(self, amount: int) -> float:
        return round(amount / self.scale * BAR_WIDTH, 1)

    @property
    def over_nominal(self) -> bool:
        return self.used > self.nominal


class Run(NamedTuple):
    """A job's GPUs held from ``start`` to ``end`` (``None``: still running), epoch seconds
    (a named tuple: thousands are made per page)."""

    start: float
    end: float | None
    gpus: int


def decayed_usage_series(
    runs: Sequence[Run], now: float, half_life: float, window: float, samples: int = 48
) -> list[tuple[float, float]]:
    """``samples`` evenly spaced points ``(time, decayed usage)`` over ``window`` up to now:
    at each time, the GPU-seconds before it, each weighted ``2 ** (-age / half_life)``.

    Incremental: the value at one point is the previous one decayed by one step plus what was
    used in between, so each run is integrated only over the steps it overlaps."""
    rate = math.log(2) / half_life
    step = window / (samples - 1)
    times = [now - window + i * step for i in range(samples)]
    added = [0.0] * samples
    for run in runs:
        end = now if run.end is None else min(run.end, now)
        first = bisect.bisect_left(times, run.start)
        for k in range(first, samples):
            low = run.start if k == 0 else max(run.start, times[k - 1])
            high = min(end, times[k])
            if high > low:
                # the integral of gpus * exp(-rate * (times[k] - u)) du from low to high
                decay_high, decay_low = rate * (times[k] - high), rate * (times[k] - low)
                added[k] += run.gpus * (math.exp(-decay_high) - math.exp(-decay_low)) / rate
            if end <= times[k]:
                break
    series, value, carry = [], 0.0, math.exp(-rate * step)
    for k, moment in enumerate(times):
        value = (value * carry if k else 0.0) + added[k]
        series.append((moment, value))
    return series


@dataclass(frozen=True, slots=True)
class LineChart:
    points: str
    """SVG polyline points."""
    peak: float
    width: int = 600
    height: int = 160


def line_chart(
    series: Sequence[tuple[float, float]], width: int = 600, height: int = 160
) -> LineChart:
    if not series:
        return LineChart("", 0.0, width, height)
    first, last = series[0][0], series[-1][0]
    span = (last - first) or 1.0
    peak = max(value for _, value in series)
    top = peak or 1.0
    points = " ".join(
        f"{(t - first) / span * width:.1f},{height - value / top * (height - 10):.1f}"
        for t, value in series
    )
    return LineChart(points, peak, width, height)


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    flavor: str | None
    ready: bool
    schedulable: bool
    cells: list[str | None] = field(default_factory=list)
    """One entry per GPU: the tenant holding it, or ``None`` when free."""

    @property
    def segments(self) -> list[tuple[int, int, str | None]]:
        """``(first GPU, count, tenant)`` of each run of GPUs held by the same tenant (or
        free): the page draws one titled group per run, not one title per GPU."""
        runs: list[tuple[int, int, str | None]] = []
        for index, tenant in enumerate(self.cells):
            if runs and runs[-1][2] == tenant:
                first, count, _ = runs[-1]
                runs[-1] = (first, count + 1, tenant)
            else:
                runs.append((index, 1, tenant))
        return runs

    @property
    def used(self) -> int:
        return sum(1 for cell in self.cells if cell)


@dataclass(frozen=True, slots=True)
class NodeFacts:
    name: str
    flavor: str | None
    ready: bool
    schedulable: bool
    gpus: int


@dataclass(frozen=True, slots=True)
class Holding:
    """A job's workers: ``gpus`` each on the nodes of ``placement`` (one entry per worker)."""

    tenant: str
    gpus: int
    placement: Sequence[str]


def gpu_grid(nodes: Sequence[NodeFacts], holdings: Iterable[Holding]) -> list[NodeRow]:
    held: dict[str, list[str]] = {node.name: [] for node in nodes}
    for holding in sorted(holdings, key=lambda h: h.tenant):
        for node_name in holding.placement:
            held.setdefault(node_name, []).extend([holding.tenant] * holding.gpus)
    rows = []
    for node in nodes:
        tenants = held[node.name]
        size = max(node.gpus, len(tenants))
        cells: list[str | None] = [*tenants, *([None] * (size - len(tenants)))]
        rows.append(NodeRow(node.name, node.flavor, node.ready, node.schedulable, cells))
    return rows


def tenant_colours(tenants: Iterable[str]) -> dict[str, str]:
    return {tenant: PALETTE[i % len(PALETTE)] for i, tenant in enumerate(sorted(set(tenants)))}
