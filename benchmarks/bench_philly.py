"""Benchmark: replaying the Microsoft Philly trace (82,247 jobs) in the simulator.

Two parts:

* **speed** — the whole trace on the cluster size published for it (352 nodes x 8 GPUs, mostly
  idle) under ``fair+backfill``; target: <= 60 s of wall time;
* **quality** — the trace on a contended cluster (64 nodes x 8 GPUs, nominal quotas
  proportional to each tenant's share of GPU time) under ``fifo``, ``fair`` and
  ``fair+backfill``, with every metric of the simulator report and the change against FIFO.
  By default only the first 20,000 jobs (about 8 minutes); the fair policies need about
  16 minutes each for the whole trace on 64 nodes (``$YUSHAN_PHILLY_CONTENDED_LIMIT=0``).

``jain_fairness`` compares what tenants hold with a weighted max-min allocation of the current
demand (see :mod:`scheduler.simulate`); figures recorded before 2026-11-30 used the index that
only checks nominal quotas, now ``jain_nominal``. The scenario harness comparing FIFO with
fair+backfill across cluster sizes, quota schemes, a burst and gang-heavy load is
:mod:`benchmarks.bench_quality`.

The trace is read from ``../shared/data/philly/philly.csv`` next to the repository, or from
``$YUSHAN_PHILLY_TRACE``; ``$YUSHAN_PHILLY_LIMIT`` replays only the first N jobs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from scheduler.policy import POLICY_NAMES, Policy
from scheduler.simconfig import load_cluster, load_quotas, read_trace
from scheduler.simulate import SimulationReport, simulate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "philly"
DEFAULT_TRACE = ROOT.parent / "shared" / "data" / "philly" / "philly.csv"
DEFAULT_CONTENDED_LIMIT = 20_000
SUMMARY_KEYS = (
    "completed",
    "failed",
    "failed_retry_limit",
    "failed_deadline",
    "unfinished",
    "avg_jct_seconds",
    "p50_jct_seconds",
    "p99_jct_seconds",
    "avg_queueing_delay_seconds",
    "p99_queueing_delay_seconds",
    "p99_queueing_delay_all_seconds",
    "makespan_seconds",
    "gpu_utilisation",
    "jain_fairness",
    "jain_nominal",
    "preemptions",
    "lost_gpu_seconds",
    "quota_violations",
    "capacity_violations",
    "cycles",
    "wall_seconds",
)


def _summary(report: SimulationReport) -> dict[str, object]:
    data = report.as_dict()
    summary: dict[str, object] = {key: data[key] for key in SUMMARY_KEYS}
    summary["tenant_share_vs_entitlement"] = {
        tenant: {
            "share": round(row["gpu_share"], 4),
            "entitlement": round(row["entitlement"], 4),
            "demand": round(row["demand_share"], 4),
            "held_vs_fair": round(row["received_vs_fair"], 3),
            "avg_jct_seconds": round(row["avg_jct_seconds"], 1),
        }
        for tenant, row in report.tenants.items()
    }
    return summary


def _reduction(baseline: float, value: float) -> float:
    """Percentage by which ``value`` is below ``baseline`` (negative: worse)."""
    return round(100.0 * (baseline - value) / baseline, 1) if baseline else 0.0


def main() -> dict[str, object]:
    trace = Path(os.environ.get("YUSHAN_PHILLY_TRACE", DEFAULT_TRACE))
    limit_text = os.environ.get("YUSHAN_PHILLY_LIMIT")
    rows = read_trace(trace, int(limit_text) if limit_text else None)
    figures: dict[str, object] = {"trace": str(trace), "jobs": len(rows)}

    started = time.perf_counter()
    full = simulate(
        rows,
        load_cluster(EXAMPLES / "cluster-full.yaml"),
        load_quotas(EXAMPLES / "quotas-full.yaml"),
        Policy.named("fair+backfill"),
        policy_name="fair+backfill",
    )
    figures["replay_352_nodes"] = {
        "wall_seconds": round(time.perf_counter() - started, 2),
        "target_seconds": 60,
        **_summary(full),
    }

    cluster = load_cluster(EXAMPLES / "cluster.yaml")
    quotas = load_quotas(EXAMPLES / "quotas.yaml")
    contended_limit = int(os.environ.get("YUSHAN_PHILLY_CONTENDED_LIMIT", DEFAULT_CONTENDED_LIMIT))
    contended_rows = rows[:contended_limit] if contended_limit > 0 else rows
    reports = {
        name: simulate(contended_rows, cluster, quotas, Policy.named(name), policy_name=name)
        for name in POLICY_NAMES
    }
    figures["contended_64_nodes"] = {name: _summary(r) for name, r in reports.items()}
    figures["contended_jobs"] = len(contended_rows)
    fifo = reports["fifo"]
    figures["against_fifo_percent_lower"] = {
        name: {
            "avg_jct": _reduction(fifo.avg_jct_seconds, r.avg_jct_seconds),
            "p99_queueing_delay": _reduction(
                fifo.p99_queueing_delay_seconds, r.p99_queueing_delay_seconds
            ),
            "avg_queueing_delay": _reduction(
                fifo.avg_queueing_delay_seconds, r.avg_queueing_delay_seconds
            ),
        }
        for name, r in reports.items()
        if name != "fifo"
    }
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
