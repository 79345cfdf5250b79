"""What ``yushan simulate`` prints and writes: the summary table, JSON, per-job CSV, progress.

The progress bar (``rich``) goes to standard error and only when asked for or when standard error
is a terminal; without a terminal, ``--progress`` prints a plain line every few seconds instead.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from scheduler.simulate import JobRecord, ProgressCallback, SimulationReport

JOB_COLUMNS: tuple[str, ...] = (
    "job_id",
    "tenant",
    "gpus",
    "submit_time",
    "start_time",
    "end_time",
    "queueing_seconds",
    "run_seconds",
    "preemptions",
    "outcome",
)
PLAIN_PROGRESS_SECONDS = 5.0
TABLE_WIDTH = 120


def duration(seconds: float) -> str:
    """A duration for people: ``42 s``, ``12.5 min``, ``5.2 h``, ``3.1 d``."""
    if not math.isfinite(seconds):
        return str(seconds)
    magnitude = abs(seconds)
    if magnitude < 120:
        return f"{seconds:.0f} s"
    if magnitude < 7200:
        return f"{seconds / 60:.1f} min"
    if magnitude < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def report_json(report: SimulationReport) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=True)


def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else str(round(value))


def write_jobs_csv(records: Sequence[JobRecord], path: Path) -> None:
    """One row per job, columns :data:`JOB_COLUMNS`; times in seconds from the trace start
    (millisecond precision), empty for a job that never started or never ended."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(JOB_COLUMNS)
        for r in records:
            writer.writerow(
                (
                    r.job_id,
                    r.tenant,
                    r.gpus,
                    _number(r.submit_time),
                    _number(r.start_time),
                    _number(r.end_time),
                    _number(r.queueing_seconds),
                    _number(r.run_seconds),
                    r.preemptions,
                    r.outcome,
                )
            )


def print_table(report: SimulationReport, out: TextIO) -> None:
    """The report for people: overall figures, then per tenant, then per gang size."""
    from rich.console import Console
    from rich.table import Table

    probe = Console(file=out)
    width = max(TABLE_WIDTH, probe.width) if probe.is_terminal else TABLE_WIDTH
    console = Console(file=out, width=width, highlight=False)
    lost_h = report.lost_gpu_seconds / 3600
    summary = Table(
        title=f"Simulation: policy {report.policy}",
        title_justify="left",
        show_header=False,
        box=None,
    )
    summary.add_column("metric", style="bold")
    summary.add_column("value")
    rows: list[tuple[str, str]] = [
        ("jobs", f"{report.jobs:,}"),
        ("succeeded", f"{report.completed:,}"),
        (
            "failed",
            f"{report.failed:,} ({_share(report.failed, report.jobs)}): "
            f"{report.failed_retry_limit:,} at the retry limit, "
            f"{report.failed_deadline:,} at their time limit",
        ),
        ("unfinished", f"{report.unfinished:,}"),
        (
            "JCT avg / p50 / p99",
            " / ".join(
                duration(x)
                for x in (report.avg_jct_seconds, report.p50_jct_seconds, report.p99_jct_seconds)
            ),
        ),
        (
            "queueing avg / p50 / p99",
            " / ".join(
                duration(x)
                for x in (
                    report.avg_queueing_delay_seconds,
                    report.p50_queueing_delay_seconds,
                    report.p99_queueing_delay_seconds,
                )
            ),
        ),
        ("p99 queueing, failed jobs too", duration(report.p99_queueing_delay_all_seconds)),
        ("makespan", duration(report.makespan_seconds)),
        ("GPU utilisation", f"{report.gpu_utilisation:.1%}"),
        (
            "fairness (Jain)",
            f"{report.jain_fairness:.3f} vs fair allocation, {report.jain_nominal:.3f} vs "
            f"nominal ({report.fairness_samples:,} hourly samples with someone waiting)",
        ),
        (
            "preemptions",
            f"{report.preemptions:,}, {lost_h:,.0f} GPU-h of work lost "
            f"({report.checkpointing_jobs:,} jobs checkpoint)",
        ),
        (
            "quota / capacity violations",
            f"{report.quota_violations} / {report.capacity_violations}",
        ),
        ("cycles", f"{report.cycles:,} in {report.wall_seconds:.1f} s of wall time"),
    ]
    estimates = report.start_estimates
    if estimates is not None:
        rows.append(
            (
                "start estimate error",
                f"median {duration(estimates['median_abs_error_seconds'])}, p90 "
                f"{duration(estimates['p90_abs_error_seconds'])} over "
                f"{int(estimates['estimated']):,} jobs that waited",
            )
        )
    for name, value in rows:
        summary.add_row(name, value)
    console.print(summary)

    tenants = Table(title="Per tenant", title_justify="left")
    for column in (
        "tenant",
        "jobs",
        "nominal",
        "GPU share",
        "entitled",
        "held/fair",
        "avg JCT",
        "p50 queue",
        "p99 queue",
        "lost GPU-h",
    ):
        tenants.add_column(column, justify="left" if column == "tenant" else "right")
    for name, row in report.tenants.items():
        tenants.add_row(
            name,
            f"{row['jobs']:,.0f}",
            f"{row['nominal_gpus']:.0f}",
            f"{row['gpu_share']:.1%}",
            f"{row['entitlement']:.1%}",
            f"{row['received_vs_fair']:.2f}",
            duration(row["avg_jct_seconds"]),
            duration(row["p50_queueing_delay_seconds"]),
            duration(row["p99_queueing_delay_seconds"]),
            f"{row['lost_gpu_seconds'] / 3600:,.0f}",
        )
    console.print(tenants)

    gangs = Table(title="Per gang size (GPUs)", title_justify="left")
    for column in ("GPUs", "jobs", "median wait", "longest wait", "failed at retry limit"):
        gangs.add_column(column, justify="left" if column == "GPUs" else "right")
    for label, row in report.gang_waits.items():
        gangs.add_row(
            label,
            f"{row['jobs']:,.0f}",
            duration(row["p50_wait_seconds"]),
            duration(row["max_wait_seconds"]),
            f"{row['failed_retry_limit']:,.0f}",
        )
    console.print(gangs)
    if report.spend is not None:
        spend = Table(title="Spend per tenant (credits, --prices)", title_justify="left")
        for column in ("tenant", "kind", "GPU-h", "cost", "credited", "net"):
            spend.add_column(column, justify="left" if column in ("tenant", "kind") else "right")
        for name, entry in report.spend.items():
            spend.add_row(
                name,
                str(entry["kind"]),
                f"{entry['gpu_hours']:,.1f}",
                str(entry["cost"]),
                str(entry["credited"]),
                str(entry["net"]),
            )
        console.print(spend)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f} %" if whole else "0 %"


@contextlib.contextmanager
def progress_bar(out: TextIO, total: int, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A progress callback for :func:`scheduler.simulate.simulate`, or ``None`` if disabled.

    Shows simulated time reached, jobs done of all, the rate in jobs per second and an ETA.
    """
    if not enabled:
        yield None
        return
    if not out.isatty():
        yield _plain_progress(out, total)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("simulated {task.fields[simulated]:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("jobs · {task.fields[rate]} jobs/s · ETA"),
        TimeRemainingColumn(),
        TextColumn("· elapsed"),
        TimeElapsedColumn(),
        console=Console(file=out),
    ) as bar:
        task = bar.add_task("replay", total=total, simulated="0 s", rate="-")
        started = time.perf_counter()

        def update(simulated: float, done: int, jobs: int) -> None:
            elapsed = time.perf_counter() - started
            rate = f"{done / elapsed:,.0f}" if elapsed > 0 else "-"
            bar.update(task, completed=done, total=jobs, simulated=duration(simulated), rate=rate)

        yield update


def _plain_progress(out: TextIO, total: int) -> ProgressCallback:
    started = time.perf_counter()
    last = [started]

    def update(simulated: float, done: int, jobs: int) -> None:
        now = time.perf_counter()
        if now - last[0] < PLAIN_PROGRESS_SECONDS and done < jobs:
            return
        last[0] = now
        elapsed = now - started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (jobs - done) / rate if rate > 0 else math.inf
        print(
            f"simulated {duration(simulated)}, {done:,}/{jobs or total:,} jobs done, "
            f"{rate:,.0f} jobs/s, ETA {duration(eta)}",
            file=out,
            flush=True,
        )

    return update
