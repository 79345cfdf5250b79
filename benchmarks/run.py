"""``make bench``: run every benchmark, print the figures and keep them in var/benchmarks.json.

``python -m benchmarks.run [NAME ...]`` runs only the named ones (cycle, philly, quality,
dispatch, api, loop_steady, loop_latency, loop_mixed, portal); ``quality`` runs every scenario of
:mod:`benchmarks.bench_quality` with its defaults.
The figures, with the machine and the date, are recorded by hand in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    bench_api,
    bench_cycle,
    bench_dispatch,
    bench_loop,
    bench_philly,
    bench_portal,
    bench_quality,
)

BENCHMARKS: dict[str, Callable[[], dict[str, object]]] = {
    "cycle": bench_cycle.main,
    "philly": bench_philly.main,
    "quality": bench_quality.main,
    "dispatch": bench_dispatch.main,
    "api": bench_api.main,
    "loop_steady": bench_loop.steady_main,
    "loop_latency": bench_loop.latency_main,
    "loop_mixed": bench_loop.mixed_main,
    "portal": bench_portal.main,
}


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    for name in names:
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        figures = BENCHMARKS[name]()
        figures["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(figures, indent=2), flush=True)
        results[name] = figures
    out = Path("var") / "benchmarks.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
