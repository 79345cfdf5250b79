"""The portal's chart geometry: decayed usage agrees with the scheduler's decay, the GPU grid
puts each job's GPUs on its nodes, quota bars scale to the largest amount."""

from __future__ import annotations

import math

import pytest

from api.ui.charts import (
    Holding,
    NodeFacts,
    QuotaBar,
    Run,
    decayed_usage_series,
    gpu_grid,
    line_chart,
)
from quotas.decay import decay

HALF_LIFE = 3600.0
RUNS = [
    [Run(0, 1800, 8)],
    [Run(0, None, 4)],
    [Run(0, 600, 2), Run(300, 5000, 6), Run(4000, None, 1)],
    [Run(7000, None, 3)],  # starts after the moment: no usage yet
    [Run(-9000, 200, 5), Run(1000, 1001, 64)],
]


def loop_average(runs: list[Run], moment: float) -> float:
    """What the scheduler loop keeps: an exponentially weighted average of the GPUs held
    (quotas.decay), sampled at every change from time -10000 on."""
    points = {-10000.0, moment, *(r.start for r in runs), *(r.end for r in runs if r.end)}
    average, previous = 0.0, -10000.0
    for at in sorted(t for t in points if t <= moment):
        held = sum(
            r.gpus for r in runs if r.start <= previous and (r.end is None or r.end > previous)
        )
        average = decay(average, held, at - previous, HALF_LIFE)
        previous = at
    return average


@pytest.mark.parametrize("runs", RUNS)
def test_each_point_is_the_schedulers_average_times_its_time_constant(runs: list[Run]) -> None:
    """The chart weighs each GPU-second 2^(-age/half-life): the integral form of the loop's
    average, i.e. the average times half_life / ln 2 (how /metrics exports it)."""
    series = decayed_usage_series(runs, now=6000, half_life=HALF_LIFE, window=15000, samples=31)
    for moment, value in series:
        expected = loop_average(runs, moment) * HALF_LIFE / math.log(2)
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-6), moment


def test_the_series_ends_now_and_rises_while_a_job_runs() -> None:
    series = decayed_usage_series([Run(0, None, 8)], now=7200, half_life=HALF_LIFE, window=7200)
    assert series[0] == (0.0, 0.0)
    assert series[-1][0] == pytest.approx(7200)
    values = [v for _, v in series]
    assert values == sorted(values)
    chart = line_chart(series)
    assert chart.peak == values[-1]
    assert chart.points.split()[-1] == "600.0,10.0"  # the peak at the top right


def test_the_gpu_grid_marks_each_gpu_with_the_tenant_holding_it() -> None:
    nodes = [NodeFacts("n0", "h100", True, True, 4), NodeFacts("n1", "h100", False, False, 2)]
    holdings = [Holding("lab-b", 1, ["n0"]), Holding("lab-a", 2, ["n0", "n1"])]
    rows = gpu_grid(nodes, holdings)
    assert rows[0].cells == ["lab-a", "lab-a", "lab-b", None]
    assert rows[1].cells == ["lab-a", "lab-a"]
    assert rows[0].segments == [(0, 2, "lab-a"), (2, 1, "lab-b"), (3, 1, None)]
    assert (rows[0].used, rows[1].used) == (3, 2)
    assert (rows[1].ready, rows[1].schedulable) == (False, False)


@pytest.mark.parametrize(
    ("bar", "used_x", "nominal_x", "over"),
    [
        (QuotaBar("h100", 4, 16, 8), 50.0, 200.0, False),
        (QuotaBar("h100", 30, 16, None), 300.0, 160.0, True),
        (QuotaBar("h100", 0, 0, 0), 0.0, 0.0, False),
    ],
)
def test_quota_bars_scale_to_the_largest_amount(
    bar: QuotaBar, used_x: float, nominal_x: float, over: bool
) -> None:
    assert bar.x(bar.used) == used_x
    assert bar.x(bar.nominal) == nominal_x
    assert bar.over_nominal is over
