"""The simulator's fairness measure: weighted max-min allocation along the cohort tree."""

from __future__ import annotations

import pytest

from scheduler.model import CohortSpec, QuotaLimits, TenantSpec
from scheduler.policy import Policy
from scheduler.simconfig import QuotaConfig, TraceRow, cluster_from_mapping, quotas_from_mapping
from scheduler.simulate import fair_allocation, gang_bucket, simulate, water_fill

START = 1_500_000_000.0


@pytest.mark.parametrize(
    ("capacity", "demands", "weights", "expected"),
    [
        # plenty for everyone: each gets its demand
        (100, {"a": 10, "b": 20}, {"a": 1, "b": 1}, {"a": 10, "b": 20}),
        # equal weights, both want more than half: half each
        (100, {"a": 80, "b": 80}, {"a": 1, "b": 1}, {"a": 50, "b": 50}),
        # a small demand is met, the rest goes to the other
        (100, {"a": 10, "b": 200}, {"a": 1, "b": 1}, {"a": 10, "b": 90}),
        # weights 3:1
        (100, {"a": 100, "b": 100}, {"a": 3, "b": 1}, {"a": 75, "b": 25}),
        # weight 0 gets only what the others leave
        (100, {"a": 60, "z": 100}, {"a": 1, "z": 0}, {"a": 60, "z": 40}),
        (100, {"a": 200, "z": 100}, {"a": 1, "z": 0}, {"a": 100, "z": 0}),
        # no demand, no allocation
        (100, {"a": 0, "b": 50}, {"a": 1, "b": 1}, {"a": 0, "b": 50}),
        (0, {"a": 5}, {"a": 1}, {"a": 0}),
    ],
)
def test_water_fill(
    capacity: float,
    demands: dict[str, float],
    weights: dict[str, float],
    expected: dict[str, float],
) -> None:
    allocation = water_fill(capacity, demands, weights)
    assert allocation == pytest.approx(expected)
    assert sum(allocation.values()) <= capacity + 1e-9


def tenant(
    name: str, cohort: str | None, nominal: int, weight: float = 1.0, **limits: int
) -> TenantSpec:
    return TenantSpec(
        name, cohort, weight, {("v100", "gpu"): QuotaLimits(nominal, limits.get("borrowing"))}
    )


def test_cohorts_are_served_before_tenants() -> None:
    """Two cohorts of equal weight; the leftover of a satisfied tenant stays in its cohort."""
    cohorts = {
        "root": CohortSpec("root", None),
        "x": CohortSpec("x", "root"),
        "y": CohortSpec("y", "root"),
    }
    tenants = {
        "x1": tenant("x1", "x", 10),
        "x2": tenant("x2", "x", 10),
        "y1": tenant("y1", "y", 10),
        "y2": tenant("y2", "y", 10),
    }
    demand = {"x1": 2.0, "x2": 100.0, "y1": 100.0, "y2": 100.0}
    fair = fair_allocation(40, demand, tenants, cohorts, "v100")
    # cohort x gets 20 (its weight), x1 needs 2, so x2 gets 18; y splits its 20 evenly
    assert fair == pytest.approx({"x1": 2, "x2": 18, "y1": 10, "y2": 10})
    # flat water-filling would give x2 the same as the y tenants (38 / 3 each)
    flat = water_fill(40, demand, dict.fromkeys(demand, 10.0))
    assert flat["x2"] == pytest.approx(38 / 3)


def test_weights_and_borrowing_limits_count() -> None:
    tenants = {
        "a": tenant("a", None, 10, weight=2.0),
        "b": tenant("b", None, 10),
        "c": tenant("c", None, 10, borrowing=2),
    }
    fair = fair_allocation(60, {"a": 100.0, "b": 100.0, "c": 100.0}, tenants, {}, "v100")
    # c is capped at nominal + borrowing limit = 12; a and b share the other 48 at 2:1
    assert fair == pytest.approx({"a": 32, "b": 16, "c": 12})


def borrowing_scenario() -> tuple[list[TraceRow], QuotaConfig]:
    """a borrows the idle tenant c's quota before b arrives; b then gets its nominal only."""
    spec = quotas_from_mapping(
        {
            "cohorts": [{"name": "root"}],
            "tenants": [
                {"name": n, "cohort": "root", "quotas": [{"flavor": "v100", "nominal": q}]}
                for n, q in (("a", 8), ("b", 8), ("c", 16))
            ],
        }
    )
    rows = [TraceRow(START + i * 0.001, 20_000.0, 1, "a") for i in range(24)]
    rows += [TraceRow(START + 1000 + i * 0.001, 20_000.0, 1, "b") for i in range(16)]
    return rows, spec


def test_the_index_sees_borrowed_capacity_that_nominal_quotas_miss() -> None:
    rows, spec = borrowing_scenario()
    nodes = cluster_from_mapping({"node_groups": [{"flavor": "v100", "count": 4, "gpus": 8}]})
    fifo = simulate(rows, nodes, spec, Policy.named("fifo"))
    assert fifo.fairness_samples > 0
    # everyone has min(demand, nominal): the nominal index is perfect ...
    assert fifo.jain_nominal == pytest.approx(1.0)
    # ... but a holds 24 GPUs where a fair split of c's idle 16 gives 16 each
    assert fifo.jain_fairness == pytest.approx(0.8, abs=0.01)
    assert fifo.tenants["a"]["received_vs_fair"] == pytest.approx(1.5, abs=0.01)
    assert fifo.tenants["b"]["received_vs_fair"] == pytest.approx(0.5, abs=0.01)
    assert fifo.tenants["a"]["fair_gpus_avg"] == pytest.approx(16)
    fair = simulate(rows, nodes, spec, Policy.named("fair"))
    assert fair.jain_fairness > fifo.jain_fairness


def test_no_contention_no_samples() -> None:
    rows = [TraceRow(START + 10_000 * i, 100.0, 1, "a") for i in range(5)]
    nodes = cluster_from_mapping({"node_groups": [{"flavor": "v100", "count": 1, "gpus": 8}]})
    spec = quotas_from_mapping(
        {"tenants": [{"name": "a", "quotas": [{"flavor": "v100", "nominal": 8}]}]}
    )
    report = simulate(rows, nodes, spec, Policy.named("fair+backfill"))
    assert report.fairness_samples == 0
    assert report.jain_fairness == 1.0


@pytest.mark.parametrize(
    ("gpus", "bucket"),
    [
        (1, "1-7"),
        (4, "1-7"),
        (8, "8-15"),
        (12, "8-15"),
        (16, "16-23"),
        (24, "24-63"),
        (32, "24-63"),
        (64, "64+"),
        (128, "64+"),
    ],
)
def test_gang_buckets(gpus: int, bucket: str) -> None:
    assert gang_bucket(gpus) == bucket
