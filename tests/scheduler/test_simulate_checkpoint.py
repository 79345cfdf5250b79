"""Checkpoint modelling in the simulator: who checkpoints, what an eviction keeps."""

from __future__ import annotations

import math

import pytest

from scheduler.model import Demand, JobState, Priority
from scheduler.policy import Policy
from scheduler.simconfig import (
    ClusterConfig,
    QuotaConfig,
    TraceRow,
    cluster_from_mapping,
    quotas_from_mapping,
)
from scheduler.simulate import (
    EVICTION_MEMORY_SECONDS,
    SUCCEEDED,
    _Simulation,
    checkpoints,
    jobs_from_trace,
    simulate,
)

START = 1_500_000_000.0


def cluster(nodes: int = 1) -> ClusterConfig:
    return cluster_from_mapping({"node_groups": [{"flavor": "v100", "count": nodes, "gpus": 8}]})


def quotas(**nominal: int) -> QuotaConfig:
    return quotas_from_mapping(
        {
            "cohorts": [{"name": "root"}],
            "tenants": [
                {"name": name, "cohort": "root", "quotas": [{"flavor": "v100", "nominal": n}]}
                for name, n in nominal.items()
            ],
        }
    )


@pytest.mark.parametrize(
    ("share", "low", "high"), [(0.0, 0, 0), (0.3, 2700, 3300), (1.0, 10_000, 10_000)]
)
def test_a_stable_share_of_jobs_checkpoints(share: float, low: int, high: int) -> None:
    chosen = [i for i in range(10_000) if checkpoints(f"j{i}", share)]
    assert low <= len(chosen) <= high
    assert chosen == [i for i in range(10_000) if checkpoints(f"j{i}", share)]


def test_checkpointing_jobs_are_a_subset_as_the_share_grows() -> None:
    small = {i for i in range(2000) if checkpoints(f"j{i}", 0.2)}
    large = {i for i in range(2000) if checkpoints(f"j{i}", 0.6)}
    assert small < large


def test_trace_jobs_get_the_interval() -> None:
    rows = [TraceRow(START + i, 100.0, 1, "a") for i in range(200)]
    jobs, _ = jobs_from_trace(
        rows, cluster(), quotas(a=8), checkpoint_share=0.5, checkpoint_interval=900
    )
    intervals = {j.checkpoint_interval_seconds for j in jobs}
    assert intervals == {None, 900}
    none, _ = jobs_from_trace(rows, cluster(), quotas(a=8))
    assert {j.checkpoint_interval_seconds for j in none} == {None}


def borrower_then_owner() -> list[TraceRow]:
    """a borrows b's half with 10,000 s jobs; b comes back after 2,500 s with short jobs."""
    rows = [TraceRow(START + i * 0.001, 10_000.0, 1, "a") for i in range(8)]
    rows += [TraceRow(START + 2500 + i * 0.001, 100.0, 1, "b") for i in range(4)]
    return rows


@pytest.mark.parametrize(("share", "lost_per_eviction"), [(0.0, 2500.0), (1.0, 500.0)])
def test_an_eviction_keeps_the_work_up_to_the_last_checkpoint(
    share: float, lost_per_eviction: float
) -> None:
    report = simulate(
        borrower_then_owner(),
        cluster(),
        quotas(a=4, b=4),
        Policy.named("fair"),
        checkpoint_share=share,
        checkpoint_interval=1000,
    )
    assert report.preemptions > 0
    assert report.completed == report.jobs
    assert report.lost_gpu_seconds == pytest.approx(report.preemptions * lost_per_eviction, abs=1)
    evicted = [r for r in report.records if r.preemptions > 0]
    assert len(evicted) == report.preemptions
    for record in evicted:
        assert record.outcome == SUCCEEDED
        assert record.run_seconds == pytest.approx(10_000)
        assert record.end_time is not None
        assert record.start_time is not None
        # the last attempt only had the unsaved work left to do
        remaining = 10_000 - (2500 - lost_per_eviction)
        assert record.end_time - record.start_time == pytest.approx(remaining, abs=1)
        assert record.queueing_seconds == pytest.approx(
            record.end_time - record.submit_time - record.run_seconds
        )


def test_checkpoints_shorten_the_jct_of_evicted_jobs() -> None:
    rows = borrower_then_owner()
    plain = simulate(rows, cluster(), quotas(a=4, b=4), Policy.named("fair"))
    saved = simulate(rows, cluster(), quotas(a=4, b=4), Policy.named("fair"), checkpoint_share=1.0)
    assert saved.lost_gpu_seconds < plain.lost_gpu_seconds
    assert saved.avg_jct_seconds < plain.avg_jct_seconds


def test_a_requeued_job_has_a_shorter_limit_and_remembers_recent_evictions() -> None:
    rows = [TraceRow(START, 10_000.0, 1, "a")]
    jobs, durations = jobs_from_trace(rows, cluster(), quotas(a=8), checkpoint_share=1.0)
    sim = _Simulation(jobs, durations, cluster(), quotas(a=8), Policy.named("fair"), window=8)
    now = START + 100_000.0
    old, recent = now - EVICTION_MEMORY_SECONDS - 1, now - 3600
    running = JobState(
        id=jobs[0].id,
        tenant="a",
        user="a",
        flavor="v100",
        workers=1,
        demand=Demand(1, 8000, 64 * 1024**3),
        priority=Priority.NORMAL,
        submitted_at=START,
        max_runtime_seconds=10_000,
        admitted_at=now - 4000,
        placement=("v100-0",),
        checkpoint_interval_seconds=1800,
        evicted_at=(old, recent),
    )
    sim._requeue(running, now)
    queued = sim.waiting[running.id]
    assert queued.max_runtime_seconds == 10_000 - 3600
    assert sim.remaining[running.id] == pytest.approx(10_000 - 3600)
    assert queued.evicted_at == (recent, now)
    assert queued.attempts == 1
    assert queued.admitted_at is None
    assert queued.placement is None
    assert queued.not_before is not None
    assert queued.not_before > now
    assert math.isclose(sim.remaining[running.id] + 3600, durations[running.id])
