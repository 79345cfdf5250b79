"""The simulator honours per-user limits and dependencies."""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from scheduler import simoutput
from scheduler.model import Condition, Dependency, JobState, UserLimits
from scheduler.policy import Policy
from scheduler.simconfig import TraceRow
from scheduler.simulate import JobRecord, configure_parser, run, simulate, simulate_jobs
from tests.scheduler.builders import SnapshotBuilder
from tests.scheduler.test_limit_properties import CLUSTER, QUOTAS, peak_overlap
from tests.scheduler.test_simulate import START

FIFO = Policy.named("fifo")


def ten_small_jobs() -> list[TraceRow]:
    return [TraceRow(START + i, 100.0, 1, "t0") for i in range(10)]


def peak_jobs(records: list[JobRecord]) -> int:
    spans = [(r.start_time or 0.0, r.end_time or 0.0, r.gpus) for r in records]
    return peak_overlap(spans)[0]


@pytest.mark.parametrize(
    ("limits", "peak"),
    [(None, 10), (UserLimits(max_running_jobs=3), 3), (UserLimits(max_gpus=2), 2)],
)
def test_user_limits_cap_concurrency_in_the_simulator(limits: UserLimits | None, peak: int) -> None:
    report = simulate(ten_small_jobs(), CLUSTER, QUOTAS, FIFO, user_limits=limits)
    assert report.completed == 10
    assert peak_jobs(report.records) == peak


def test_simulate_command_takes_user_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(
        "timestamp,duration,num_gpus,gpu_time,cluster\n"
        + "".join(f"2017-10-01 00:00:0{i},100,1,100,t0\n" for i in range(6))
    )
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("node_groups: [{flavor: a100, count: 1, gpus: 8}]\n")
    quotas = tmp_path / "quotas.yaml"
    quotas.write_text(
        "cohorts: [{name: root}]\n"
        "tenants: [{name: t0, cohort: root, quotas: [{flavor: a100, nominal: 8}]}]\n"
    )
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    common = ["--trace", str(trace), "--cluster", str(cluster), "--quotas", str(quotas)]
    args = parser.parse_args(
        [
            *common,
            "--policy",
            "fifo",
            "--user-max-running-jobs",
            "2",
            "-o",
            "json",
        ]
    )
    assert run(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["completed"] == 6
    assert report["makespan_seconds"] == pytest.approx(
        301.0
    )  # 3 rounds of 2 jobs (105 s unlimited)
    bad = parser.parse_args([*common, "--user-max-gpus", "-1"])
    assert run(bad) == 2
    assert "--user-max-gpus must be >= 0" in capsys.readouterr().err


def chain() -> tuple[list[JobState], dict[str, float]]:
    """``first`` runs 100 s and succeeds; ``killed`` passes its 50 s limit and fails."""
    builder = SnapshotBuilder()
    jobs = [
        replace(builder.job("first", "t0", submitted_at=START), max_runtime_seconds=1000),
        replace(builder.job("killed", "t0", submitted_at=START), max_runtime_seconds=50),
    ]
    dependent = [
        ("after-ok", Dependency("first", Condition.SUCCEEDED)),
        ("after-not-ok", Dependency("killed", Condition.FAILED)),
        ("after-any", Dependency("killed", Condition.FINISHED)),
        ("never", Dependency("first", Condition.FAILED)),
        ("never-either", Dependency("never", Condition.SUCCEEDED)),
    ]
    for job_id, dependency in dependent:
        job = builder.job(job_id, "t0", submitted_at=START + 1)
        jobs.append(replace(job, max_runtime_seconds=1000, depends_on=(dependency,)))
    durations = {job.id: 100.0 for job in jobs}
    return jobs, durations


def test_dependencies_in_the_simulator() -> None:
    jobs, durations = chain()
    report = simulate_jobs(jobs, durations, CLUSTER, QUOTAS, FIFO)
    records = {r.job_id: r for r in report.records}
    assert records["first"].end_time == pytest.approx(100.0)
    assert records["after-ok"].start_time == pytest.approx(100.0)
    assert records["after-not-ok"].start_time == pytest.approx(50.0)
    assert records["after-any"].start_time == pytest.approx(50.0)
    for job_id in ("never", "never-either"):
        assert (records[job_id].outcome, records[job_id].reason) == (
            "failed",
            "DependencyNeverSatisfied",
        )
        assert records[job_id].start_time is None
    assert records["never"].end_time == pytest.approx(100.0)
    assert report.completed == 4


def test_start_estimates_are_measured_against_actual_starts() -> None:
    """Two 8-GPU jobs on a 16-GPU cluster, then two more that wait: limits equal run times
    (factor 1) make every estimate exact (to the projection's resolution); doubled limits make
    them late by the unused time."""
    rows = [TraceRow(START + i, 1000.0, 8, "t0" if i % 2 else "t1") for i in range(4)]
    exact = simulate(rows, CLUSTER, QUOTAS, FIFO, estimate_starts=True)
    errors = exact.start_estimates
    assert errors is not None
    assert (errors["waiting_jobs"], errors["estimated"], errors["unestimated"]) == (2, 2, 0)
    # ends 1 s apart are projected together (the projection's resolution): at most 1 s off
    assert errors["p90_abs_error_seconds"] <= 1.0
    loose = simulate(rows, CLUSTER, QUOTAS, FIFO, estimate_starts=True, runtime_limit_factor=2)
    assert loose.start_estimates is not None
    assert loose.start_estimates["median_abs_error_seconds"] == pytest.approx(1000.0, abs=1)
    assert loose.start_estimates["mean_signed_error_seconds"] == pytest.approx(-1000.0, abs=1)
    assert simulate(rows, CLUSTER, QUOTAS, FIFO).start_estimates is None


def test_the_table_reports_the_estimate_error() -> None:
    rows = [TraceRow(START + i, 1000.0, 8, "t0" if i % 2 else "t1") for i in range(4)]
    report = simulate(rows, CLUSTER, QUOTAS, FIFO, estimate_starts=True, runtime_limit_factor=2)
    out = io.StringIO()
    simoutput.print_table(report, out)
    assert "start estimate error" in out.getvalue()
    assert "over 2 jobs that waited" in out.getvalue()
