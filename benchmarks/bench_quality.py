"""Scheduling-quality scenarios on the Philly trace: FIFO against fair+backfill.

Each scenario runs by itself::

    python -m benchmarks.bench_quality full     # whole trace, example cluster and quotas
    python -m benchmarks.bench_quality sweep    # 3 cluster sizes x 3 quota schemes
    python -m benchmarks.bench_quality burst    # 3,000 one-GPU jobs from one tenant in a minute
    python -m benchmarks.bench_quality gangs    # only gangs of >= 8 GPUs at ~90 % offered load
    python -m benchmarks.bench_quality all      # all four (what ``benchmarks.run quality`` runs)

Options (each scenario): ``--limit-jobs N`` replays only the first N jobs of the trace (0: all),
``--skip-jobs N`` starts that window after the first N jobs (a second window: single windows
mislead, see docs/benchmarks.md),
``--policies fifo,fair+backfill``, ``--checkpoint-share F`` and ``--checkpoint-interval S``
(passed to the simulator). ``$YUSHAN_PHILLY_TRACE`` overrides the trace and
``$YUSHAN_QUALITY_LIMIT`` the default job limit of every scenario. Defaults (measured on the
2-vCPU machine of docs/benchmarks.md, see there):

* ``full``: the whole trace (82,247 jobs);
* ``sweep``: the first 10,000 jobs (9 cases x 2 policies; the whole trace would take hours,
  dominated by fair+backfill on the 0.75x cluster);
* ``burst``: the first 10,000 jobs, with and without the burst;
* ``gangs``: every job of >= 8 GPUs in the trace (1,932 jobs), submission times compressed so
  that the offered load is 90 % of the example cluster.

In ``sweep`` a case counts as *contended* when FIFO's average queueing delay is more than 10 % of
its average JCT; the 2x target applies to those cases only.

Cluster and quota variants are built in code from the example files (``ClusterConfig`` and
``QuotaConfig`` objects), never from hand-written YAML per case. Every scenario prints a table
and returns its figures (a JSON-able mapping); targets are reported next to the figures, as
``met`` flags, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from scheduler.model import GPU, NodeState, QuotaLimits, TenantSpec
from scheduler.policy import DEFAULT_TOPOLOGY_LABEL, Policy
from scheduler.simconfig import ClusterConfig, QuotaConfig, TraceRow, load_cluster, load_quotas
from scheduler.simconfig import read_trace as _read_trace
from scheduler.simulate import (
    DEFAULT_CHECKPOINT_INTERVAL,
    FAILED,
    RETRY_LIMIT,
    SUCCEEDED,
    JobRecord,
    SimulationReport,
    simulate,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "philly"
DEFAULT_TRACE = ROOT.parent / "shared" / "data" / "philly" / "philly.csv"
POLICIES: tuple[str, ...] = ("fifo", "fair+backfill")
DEFAULT_LIMITS: dict[str, int] = {"full": 0, "sweep": 10_000, "burst": 10_000, "gangs": 0}
SWEEP_SIZES: tuple[float, ...] = (0.75, 1.0, 1.5)
SWEEP_QUOTAS: tuple[str, ...] = ("proportional", "equal", "academic4:industry1")
BURST_JOBS = 3000
BURST_SECONDS = 60.0
BURST_RUN_SECONDS = 3600.0
BURST_TENANT = "6214e9"
GANG_MIN_GPUS = 8
GANG_LOAD = 0.9
GANG_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("8", 8, 15),
    ("16", 16, 23),
    ("24-32", 24, 63),
    ("64+", 64, 1 << 30),
)
"""Gang buckets of the scenario (label, smallest, largest GPUs); 12-GPU jobs count as 8."""


@dataclass(frozen=True, slots=True)
class Options:
    limit: int | None
    skip: int = 0
    """Jobs of the trace left out before the window (``--skip-jobs``): another window of the
    same length, its submissions shifted to start at 0."""
    policies: tuple[str, ...] = POLICIES
    checkpoint_share: float = 0.0
    checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL


# -- inputs -------------------------------------------------------------------------------------


def trace_path() -> Path:
    return Path(os.environ.get("YUSHAN_PHILLY_TRACE", DEFAULT_TRACE))


_trace_cache: dict[Path, list[TraceRow]] = {}


def read_trace(limit: int | None, skip: int = 0) -> list[TraceRow]:
    """The trace (read once per process), from job ``skip`` on, ``limit`` jobs if given
    (0/None: all), with submissions shifted so that the window starts at 0."""
    path = trace_path()
    if path not in _trace_cache:
        _trace_cache[path] = _read_trace(path)
    rows = _trace_cache[path][skip:]
    rows = rows[:limit] if limit else list(rows)
    if skip and rows:
        start = rows[0].submitted_at
        rows = [replace(row, submitted_at=row.submitted_at - start) for row in rows]
    return rows


def example_cluster() -> ClusterConfig:
    return load_cluster(EXAMPLES / "cluster.yaml")


def example_quotas() -> QuotaConfig:
    return load_quotas(EXAMPLES / "quotas.yaml")


def scale_cluster(cluster: ClusterConfig, factor: float) -> ClusterConfig:
    """The same node groups with ``round(count x factor)`` nodes each (at least one), renamed
    ``<flavor>-<i>`` and relabelled into topology blocks of the original block size."""
    nodes: list[NodeState] = []
    for flavor in cluster.flavors:
        group = [n for n in cluster.nodes if n.flavor == flavor]
        template = group[0]
        block = template.labels.get(DEFAULT_TOPOLOGY_LABEL)
        block_size = sum(1 for n in group if n.labels.get(DEFAULT_TOPOLOGY_LABEL) == block)
        for index in range(max(1, round(len(group) * factor))):
            labels = dict(template.labels)
            if block is not None:
                labels[DEFAULT_TOPOLOGY_LABEL] = f"{flavor}-block-{index // block_size}"
            nodes.append(replace(template, name=f"{flavor}-{index}", labels=labels))
    return ClusterConfig(tuple(nodes))


def _apportion(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainder)."""
    weight_sum = sum(weights.values())
    if weight_sum <= 0:
        return dict.fromkeys(weights, 0)
    exact = {name: total * w / weight_sum for name, w in weights.items()}
    shares = {name: int(x) for name, x in exact.items()}
    left = total - sum(shares.values())
    for name in sorted(exact, key=lambda n: (shares[n] - exact[n], n))[:left]:
        shares[name] += 1
    return shares


def _with_gpu_nominal(quotas: QuotaConfig, nominal: Mapping[str, int]) -> QuotaConfig:
    tenants: dict[str, TenantSpec] = {}
    for name, spec in quotas.tenants.items():
        limits = {
            fr: (
                QuotaLimits(nominal[name], q.borrowing_limit, q.lending_limit)
                if fr[1] == GPU
                else q
            )
            for fr, q in spec.quotas.items()
        }
        tenants[name] = replace(spec, quotas=limits)
    return QuotaConfig(tenants, quotas.cohorts)


def _gpu_nominal(spec: TenantSpec) -> int:
    return sum(q.nominal for (_, r), q in spec.quotas.items() if r == GPU)


def quota_scheme(quotas: QuotaConfig, scheme: str, gpus: int) -> QuotaConfig:
    """The example's quotas re-apportioned to ``gpus``: ``proportional`` (the example's
    shares), ``equal`` (the same for every tenant) or ``academic4:industry1`` (4 units per tenant
    of the ``academic`` cohort, 1 per other tenant)."""
    if scheme == "proportional":
        weights = {n: float(_gpu_nominal(s)) for n, s in quotas.tenants.items()}
    elif scheme == "equal":
        weights = dict.fromkeys(quotas.tenants, 1.0)
    elif scheme == "academic4:industry1":
        weights = {n: 4.0 if s.cohort == "academic" else 1.0 for n, s in quotas.tenants.items()}
    else:
        raise ValueError(f"unknown quota scheme {scheme!r}")
    return _with_gpu_nominal(quotas, _apportion(gpus, weights))


def cluster_gpus(cluster: ClusterConfig) -> int:
    return sum(n.allocatable.gpu for n in cluster.nodes)


# -- running ------------------------------------------------------------------------------------


def run_policy(
    rows: Sequence[TraceRow],
    cluster: ClusterConfig,
    quotas: QuotaConfig,
    policy: str,
    options: Options,
    time_scale: float = 1.0,
) -> SimulationReport:
    return simulate(
        rows,
        cluster,
        quotas,
        Policy.named(policy),
        policy_name=policy,
        time_scale=time_scale,
        checkpoint_share=options.checkpoint_share,
        checkpoint_interval=options.checkpoint_interval,
    )


def _change(baseline: float, value: float) -> float:
    """Relative change of ``value`` against ``baseline`` in percent (negative: lower)."""
    return round(100.0 * (value - baseline) / baseline, 1) if baseline else 0.0


def _ratio(baseline: float, value: float) -> float:
    """How many times lower ``value`` is than ``baseline``."""
    return round(baseline / value, 2) if value > 0 else float("inf")


def _percentile(values: Sequence[float], percent: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = min(len(ordered) - 1, max(0, -(-len(ordered) * percent // 100) - 1))
    return ordered[int(rank)]


def _window(jobs: int, skip: int) -> str:
    return f"jobs {skip + 1:,}-{skip + jobs:,}" if skip else f"first {jobs:,} jobs"


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 2)


def _print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    Console(width=160).print(table)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# -- scenarios ----------------------------------------------------------------------------------


def full(options: Options) -> dict[str, object]:
    """The whole trace on the example cluster and quotas, FIFO against fair+backfill."""
    rows = read_trace(options.limit, options.skip)
    cluster, quotas = example_cluster(), example_quotas()
    reports = {p: run_policy(rows, cluster, quotas, p, options) for p in options.policies}
    figures: dict[str, object] = {"jobs": len(rows)}
    table: list[tuple[object, ...]] = []
    for name, report in reports.items():
        figures[name] = {
            "avg_jct_hours": _hours(report.avg_jct_seconds),
            "p99_queueing_hours": _hours(report.p99_queueing_delay_seconds),
            "p99_queueing_with_failed_hours": _hours(report.p99_queueing_delay_all_seconds),
            "quota_violations": report.quota_violations,
            "capacity_violations": report.capacity_violations,
            "failed_retry_limit_percent": round(100 * report.failed_retry_limit / report.jobs, 2),
            "preemptions": report.preemptions,
            "lost_gpu_hours": round(report.lost_gpu_seconds / 3600),
            "jain_fairness": round(report.jain_fairness, 3),
            "wall_seconds": round(report.wall_seconds, 1),
        }
        table.append(
            (
                name,
                _hours(report.avg_jct_seconds),
                _hours(report.p99_queueing_delay_seconds),
                report.quota_violations,
                round(100 * report.failed_retry_limit / report.jobs, 2),
                report.preemptions,
                round(report.jain_fairness, 3),
                round(report.wall_seconds, 1),
            )
        )
    if "fifo" in reports and "fair+backfill" in reports:
        fifo, fair = reports["fifo"], reports["fair+backfill"]
        targets = {
            "avg_jct_2x_lower": fifo.avg_jct_seconds >= 2 * fair.avg_jct_seconds,
            "p99_queueing_lower": fair.p99_queueing_delay_seconds < fifo.p99_queueing_delay_seconds,
            "no_violations": fair.quota_violations == 0 and fair.capacity_violations == 0,
            "failed_below_1_percent": fair.failed_retry_limit < 0.01 * fair.jobs,
            "each_policy_within_60_s": all(r.wall_seconds <= 60 for r in reports.values()),
            "fair_within_3x_fifo_time": fair.wall_seconds <= 3 * fifo.wall_seconds,
        }
        figures["avg_jct_times_lower"] = _ratio(fifo.avg_jct_seconds, fair.avg_jct_seconds)
        figures["targets_met"] = targets
    _print_table(
        f"full: {len(rows):,} jobs, examples/philly cluster.yaml + quotas.yaml",
        (
            "policy",
            "avg JCT h",
            "p99 queue h",
            "quota viol.",
            "% failed retry",
            "preemptions",
            "Jain",
            "wall s",
        ),
        table,
    )
    if "targets_met" in figures:
        print(json.dumps({"targets_met": figures["targets_met"]}))
    return figures


def sweep(options: Options) -> dict[str, object]:
    """Cluster sizes 0.75x/1x/1.5x x quota schemes, FIFO against fair+backfill."""
    rows = read_trace(options.limit, options.skip)
    base_cluster, base_quotas = example_cluster(), example_quotas()
    cases: dict[str, object] = {}
    table: list[tuple[object, ...]] = []
    for size in SWEEP_SIZES:
        cluster = scale_cluster(base_cluster, size)
        gpus = cluster_gpus(cluster)
        for scheme in SWEEP_QUOTAS:
            quotas = quota_scheme(base_quotas, scheme, gpus)
            reports = {p: run_policy(rows, cluster, quotas, p, options) for p in options.policies}
            case: dict[str, object] = {
                name: {
                    "avg_jct_hours": _hours(r.avg_jct_seconds),
                    "p99_queueing_hours": _hours(r.p99_queueing_delay_seconds),
                    "p99_queueing_with_failed_hours": _hours(r.p99_queueing_delay_all_seconds),
                    "failed_retry_limit": r.failed_retry_limit,
                    "preemptions": r.preemptions,
                    "lost_gpu_hours": round(r.lost_gpu_seconds / 3600),
                    "quota_violations": r.quota_violations,
                    "wall_seconds": round(r.wall_seconds, 1),
                }
                for name, r in reports.items()
            }
            label = f"{size}x/{scheme}"
            if "fifo" in reports and "fair+backfill" in reports:
                fifo, fair = reports["fifo"], reports["fair+backfill"]
                jct_change = _change(fifo.avg_jct_seconds, fair.avg_jct_seconds)
                p99_change = _change(
                    fifo.p99_queueing_delay_seconds, fair.p99_queueing_delay_seconds
                )
                contended = fifo.avg_queueing_delay_seconds > 0.1 * fifo.avg_jct_seconds
                case["avg_jct_change_percent"] = jct_change
                case["p99_queueing_change_percent"] = p99_change
                case["contended"] = contended
                case["no_worse_than_5_percent"] = jct_change <= 5 and p99_change <= 5
                case["jct_2x_better_if_contended"] = (not contended) or (
                    fifo.avg_jct_seconds >= 2 * fair.avg_jct_seconds
                )
                table.append(
                    (
                        label,
                        gpus,
                        _hours(fifo.avg_jct_seconds),
                        _hours(fair.avg_jct_seconds),
                        jct_change,
                        _hours(fifo.p99_queueing_delay_seconds),
                        _hours(fair.p99_queueing_delay_seconds),
                        p99_change,
                        contended,
                        bool(case["no_worse_than_5_percent"])
                        and bool(case["jct_2x_better_if_contended"]),
                    )
                )
            cases[label] = case
            print(f"sweep {label}: {json.dumps(case)}", file=sys.stderr, flush=True)
    _print_table(
        f"sweep: {_window(len(rows), options.skip)}; fifo vs fair+backfill",
        (
            "size/quotas",
            "GPUs",
            "fifo JCT h",
            "fair JCT h",
            "JCT %",
            "fifo p99q h",
            "fair p99q h",
            "p99q %",
            "contended",
            "targets met",
        ),
        table,
    )
    return {"jobs": len(rows), "skipped": options.skip, "cases": cases}


def with_burst(
    rows: Sequence[TraceRow], at: float, tenant: str, jobs: int = BURST_JOBS
) -> list[TraceRow]:
    """``rows`` plus ``jobs`` one-GPU jobs of an hour from ``tenant`` spread over a minute."""
    burst = [
        TraceRow(at + i * BURST_SECONDS / jobs, BURST_RUN_SECONDS, 1, tenant) for i in range(jobs)
    ]
    return sorted([*rows, *burst], key=lambda r: (r.submitted_at, r.tenant))


def most_contended_instant(
    records: Sequence[JobRecord], origin: float, latest: float | None = None
) -> float:
    """The submission instant (absolute) at which most jobs were waiting to start, among the
    submissions up to ``latest`` seconds from the trace start if given."""
    events: list[tuple[float, int]] = []
    for r in records:
        if r.start_time is None:
            continue
        events.append((r.submit_time, 1))
        events.append((r.start_time, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    waiting = best = 0
    best_at = 0.0
    for at, delta in events:
        waiting += delta
        if delta > 0 and waiting > best and (latest is None or at <= latest):
            best, best_at = waiting, at
    return origin + best_at


def _others_p99(records: Sequence[JobRecord], tenant: str, since: float = 0.0) -> float:
    """p99 queueing delay of other tenants' succeeded jobs submitted at or after ``since``."""
    return _percentile(
        [
            r.queueing_seconds
            for r in records
            if r.tenant != tenant
            and r.outcome == SUCCEEDED
            and r.queueing_seconds is not None
            and r.submit_time >= since
        ],
        99,
    )


def burst(options: Options, tenant: str = BURST_TENANT) -> dict[str, object]:
    """Other tenants' p99 queueing delay with and without a burst of 3,000 one-GPU jobs.

    The burst starts at the submission instant with the most jobs waiting under FIFO in the
    run without the burst (the same instant for both policies), among the first half of the
    submissions so that plenty of other jobs arrive after it. The headline figure is over the
    other tenants' jobs submitted from the burst on (those it can delay); the figure over all
    their jobs is given too.
    """
    rows = read_trace(options.limit, options.skip)
    cluster, quotas = example_cluster(), example_quotas()
    baseline = {p: run_policy(rows, cluster, quotas, p, options) for p in options.policies}
    origin = rows[0].submitted_at
    reference = baseline.get("fifo") or next(iter(baseline.values()))
    halfway = rows[len(rows) // 2].submitted_at - origin
    at = most_contended_instant(reference.records, origin, halfway)
    burst_rows = with_burst(rows, at, tenant)
    figures: dict[str, object] = {
        "jobs": len(rows),
        "burst_tenant": tenant,
        "burst_at_hours_from_start": _hours(at - origin),
    }
    table: list[tuple[object, ...]] = []
    for name in options.policies:
        loaded = run_policy(burst_rows, cluster, quotas, name, options)
        since = at - origin
        before = _others_p99(baseline[name].records, tenant, since)
        after = _others_p99(loaded.records, tenant, since)
        change = _change(before, after)
        before_all = _others_p99(baseline[name].records, tenant)
        after_all = _others_p99(loaded.records, tenant)
        figures[name] = {
            "others_p99_queueing_hours_without": _hours(before),
            "others_p99_queueing_hours_with": _hours(after),
            "change_percent": change,
            "at_most_20_percent": change <= 20,
            "all_others_p99_queueing_hours_without": _hours(before_all),
            "all_others_p99_queueing_hours_with": _hours(after_all),
            "all_others_change_percent": _change(before_all, after_all),
            "burst_jobs_p50_queueing_hours": _hours(
                _percentile(
                    [
                        r.queueing_seconds
                        for r in loaded.records
                        if r.tenant == tenant and r.queueing_seconds is not None
                    ],
                    50,
                )
            ),
            "wall_seconds": round(baseline[name].wall_seconds + loaded.wall_seconds, 1),
        }
        table.append(
            (
                name,
                _hours(before),
                _hours(after),
                change,
                change <= 20,
                _hours(before_all),
                _hours(after_all),
                _change(before_all, after_all),
            )
        )
    _print_table(
        f"burst: {_window(len(rows), options.skip)}; {BURST_JOBS:,} x 1 GPU x 1 h from {tenant} "
        "within "
        f"{BURST_SECONDS:.0f} s at {_hours(at - origin)} h",
        (
            "policy",
            "others p99q h, submitted after (no burst)",
            "with burst",
            "change %",
            "<= +20 %",
            "all others p99q h (no burst)",
            "with burst",
            "change %",
        ),
        table,
    )
    return figures


def gang_rows(rows: Sequence[TraceRow], gpus: int, load: float) -> tuple[list[TraceRow], float]:
    """Jobs of at least ``GANG_MIN_GPUS`` GPUs and the time scale that makes their offered load
    ``load`` of ``gpus`` GPUs (GPU-seconds asked / (GPUs x span of submissions))."""
    gangs = [r for r in rows if r.gpus >= GANG_MIN_GPUS]
    if len(gangs) < 2:
        return gangs, 1.0
    span = gangs[-1].submitted_at - gangs[0].submitted_at
    work = sum(r.gpus * r.duration for r in gangs)
    natural = work / (gpus * span) if span > 0 else load
    return gangs, natural / load


def _gang_bucket(gpus: int) -> str | None:
    for label, smallest, largest in GANG_BUCKETS:
        if smallest <= gpus <= largest:
            return label
    return None


def gangs(options: Options) -> dict[str, object]:
    """Only gangs (>= 8 GPUs) at ~90 % offered load: waits per gang size, failures."""
    cluster, quotas = example_cluster(), example_quotas()
    rows = read_trace(options.limit, options.skip)
    selected, scale = gang_rows(rows, cluster_gpus(cluster), GANG_LOAD)
    figures: dict[str, object] = {"jobs": len(selected), "time_scale": round(scale, 4)}
    table: list[tuple[object, ...]] = []
    for name in options.policies:
        report = run_policy(selected, cluster, quotas, name, options, time_scale=scale)
        waits: dict[str, list[float]] = {}
        for r in report.records:
            bucket = _gang_bucket(r.gpus)
            if bucket is not None and r.queueing_seconds is not None:
                waits.setdefault(bucket, []).append(r.queueing_seconds)
        buckets = {
            label: {
                "jobs": len(waits.get(label, [])),
                "max_wait_hours": _hours(max(waits.get(label, [0.0]))),
                "p50_wait_hours": _hours(_percentile(waits.get(label, []), 50)),
            }
            for label, _, _ in GANG_BUCKETS
        }
        longest_8 = max(waits.get("8", [0.0]))
        longest_wide = max([*waits.get("24-32", []), *waits.get("64+", []), 0.0])
        failed = sum(1 for r in report.records if r.outcome == FAILED and r.reason == RETRY_LIMIT)
        figures[name] = {
            "buckets": buckets,
            "wide_vs_8_longest_wait": round(longest_wide / longest_8, 2) if longest_8 else None,
            "wide_at_most_4x_8": longest_wide <= 4 * longest_8,
            "failed_retry_limit_percent": round(100 * failed / max(1, report.jobs), 2),
            "unfinished": report.unfinished,
            "gpu_utilisation": round(report.gpu_utilisation, 3),
            "wall_seconds": round(report.wall_seconds, 1),
        }
        for label, _, _ in GANG_BUCKETS:
            row = buckets[label]
            table.append(
                (name, label, row["jobs"], row["p50_wait_hours"], row["max_wait_hours"], "", "")
            )
        table.append(
            (
                name,
                "all",
                report.jobs,
                "",
                "",
                round(longest_wide / longest_8, 2) if longest_8 else "-",
                round(100 * failed / max(1, report.jobs), 2),
            )
        )
    _print_table(
        f"gangs: {len(selected):,} jobs of >= {GANG_MIN_GPUS} GPUs, arrivals x{scale:.3f} "
        f"(~{GANG_LOAD:.0%} offered load)",
        (
            "policy",
            "GPUs",
            "jobs",
            "median wait h",
            "longest wait h",
            ">=24 longest / 8 longest",
            "% failed retry",
        ),
        table,
    )
    return figures


SCENARIOS: dict[str, Callable[[Options], dict[str, object]]] = {
    "full": full,
    "sweep": sweep,
    "burst": burst,
    "gangs": gangs,
}


def _limit_for(scenario: str, given: int | None) -> int | None:
    if given is None:
        env = os.environ.get("YUSHAN_QUALITY_LIMIT")
        given = int(env) if env else DEFAULT_LIMITS[scenario]
    return given or None


def run_scenarios(names: Sequence[str], options: Options) -> dict[str, object]:
    figures: dict[str, object] = {}
    for name in names:
        scenario_options = replace(options, limit=_limit_for(name, options.limit))
        figures[name] = SCENARIOS[name](scenario_options)
    return figures


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Run the scenarios named in ``argv`` (all by default) and return their figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_quality")
    parser.add_argument("scenario", nargs="?", default="all", choices=[*SCENARIOS, "all"])
    parser.add_argument("--limit-jobs", type=int, default=None, help="first N jobs (0: all)")
    parser.add_argument(
        "--skip-jobs", type=int, default=0, help="start the window after the first N jobs"
    )
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--checkpoint-share", type=float, default=0.0)
    parser.add_argument("--checkpoint-interval", type=int, default=DEFAULT_CHECKPOINT_INTERVAL)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args([] if argv is None else list(argv))
    options = Options(
        limit=args.limit_jobs,
        skip=args.skip_jobs,
        policies=tuple(p for p in args.policies.split(",") if p),
        checkpoint_share=args.checkpoint_share,
        checkpoint_interval=args.checkpoint_interval,
    )
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    figures = run_scenarios(names, options)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
