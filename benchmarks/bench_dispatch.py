"""Dispatch throughput and latency against the embedded API server.

Two ways the scheduler loop can hand admissions to the adapter are measured on the same cluster
(160 nodes x 8 GPUs, pods that keep running so the kubelet stays quiet):

* **batched** — one :meth:`ClusterClient.dispatch_many` per scheduling cycle of ``cycle_jobs``
  admissions; a job's admission-to-all-pods-created latency is its cycle's dispatch time
  (every job of the cycle was admitted at the cycle's start);
* **sequential** — one :meth:`ClusterClient.dispatch` per job, one after another (gang pods still
  created concurrently); latency per job measured directly.

The job mix is ``single_jobs`` single-worker 1-GPU jobs plus ``gang_jobs`` gangs of
``gang_size`` workers. Run: ``.venv/bin/python -m benchmarks.bench_dispatch``.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from k8s import manifests as mf
from k8s.client import ClientOptions, ClusterClient
from k8s.sim import EmbeddedCluster
from k8s.types import WorkloadSpec

NODES = 160
GPUS_PER_NODE = 8


def _nodes_file(directory: Path) -> Path:
    path = directory / "nodes.yaml"
    group = {
        "name": "gpu",
        "count": NODES,
        "gpus": GPUS_PER_NODE,
        "cpu": "96",
        "memory": "1440Gi",
        "labels": {"yushan.io/flavor": "h100"},
        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    }
    path.write_text(yaml.safe_dump({"nodes": [group]}))
    return path


class _Placer:
    """First-fit GPU placement over the benchmark's nodes (the scheduler's job in real life)."""

    def __init__(self) -> None:
        self.free = {f"gpu-{i}": GPUS_PER_NODE for i in range(NODES)}

    def place(self, workers: int, gpus: int) -> tuple[str, ...]:
        chosen: list[str] = []
        for node in self.free:
            while self.free[node] >= gpus and len(chosen) < workers:
                chosen.append(node)
                self.free[node] -= gpus
            if len(chosen) == workers:
                return tuple(chosen)
        raise RuntimeError("benchmark cluster is full")


def _jobs(
    prefix: str, single: int, gangs: int, gang_size: int, placer: _Placer
) -> list[WorkloadSpec]:
    shapes = [(1, 1)] * single + [(gang_size, 2)] * gangs
    return [
        WorkloadSpec(
            job_id=f"{prefix}{i:05d}",
            job_name="bench",
            tenant="bench",
            user="bench",
            namespace="yushan-bench",
            image="example/train:1",
            workers=workers,
            gpus_per_worker=gpus,
            cpu_milli=1000,
            memory_bytes=2**30,
            placement=placer.place(workers, gpus),
            annotations={"sim.yushan.io/duration-seconds": "3600"},
        )
        for i, (workers, gpus) in enumerate(shapes)
    ]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _batched(client: ClusterClient, jobs: list[WorkloadSpec], cycle_jobs: int) -> dict[str, float]:
    latencies: list[float] = []
    start = time.perf_counter()
    for first in range(0, len(jobs), cycle_jobs):
        cycle = jobs[first : first + cycle_jobs]
        began = time.perf_counter()
        errors = client.dispatch_many(cycle)
        if errors:
            raise RuntimeError(f"dispatch failed: {next(iter(errors.values()))}")
        latencies += [time.perf_counter() - began] * len(cycle)
    return _figures(jobs, latencies, time.perf_counter() - start)


def _sequential(client: ClusterClient, jobs: list[WorkloadSpec]) -> dict[str, float]:
    latencies: list[float] = []
    start = time.perf_counter()
    for job in jobs:
        began = time.perf_counter()
        client.dispatch(job)
        latencies.append(time.perf_counter() - began)
    return _figures(jobs, latencies, time.perf_counter() - start)


def _figures(jobs: list[WorkloadSpec], latencies: list[float], elapsed: float) -> dict[str, float]:
    pods = sum(job.workers for job in jobs)
    return {
        "jobs": len(jobs),
        "pods": pods,
        "seconds": round(elapsed, 3),
        "pods_per_second": round(pods / elapsed, 1),
        "latency_p50_ms": round(1000 * statistics.median(latencies), 1),
        "latency_p99_ms": round(1000 * _percentile(latencies, 0.99), 1),
    }


@contextlib.contextmanager
def _cluster(in_process: bool, directory: Path) -> Iterator[Path]:
    """An embedded cluster in this process or in a child process; yields its kubeconfig."""
    nodes, kubeconfig = _nodes_file(directory), directory / "kubeconfig"
    if in_process:
        with EmbeddedCluster(nodes_file=nodes, time_scale=1.0) as cluster:
            yield cluster.write_kubeconfig(kubeconfig)
        return
    command = [sys.executable, "-m", "k8s.sim", "--nodes", str(nodes)]
    server = subprocess.Popen([*command, "--kubeconfig", str(kubeconfig)], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "embedded cluster serving at ..." once the kubeconfig exists
        yield kubeconfig
    finally:
        server.terminate()
        server.wait(timeout=10)


def _round(
    single_jobs: int,
    gang_jobs: int,
    gang_size: int,
    cycle_jobs: int,
    in_process: bool,
    parallelism: int,
) -> dict[str, Any]:
    """One measurement on a fresh embedded cluster."""
    options = ClientOptions(parallelism=parallelism)
    placer = _Placer()
    batched_jobs = _jobs("jb", single_jobs, gang_jobs, gang_size, placer)
    sequential_jobs = _jobs("js", single_jobs // 5, gang_jobs // 5, gang_size, placer)
    expected = {
        mf.pod_name(j.job_id, i) for j in batched_jobs + sequential_jobs for i in range(j.workers)
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        _cluster(in_process, Path(tmp)) as kubeconfig,
        ClusterClient.from_kubeconfig(kubeconfig, options=options) as client,
    ):
        client.ensure_namespace("yushan-bench", "bench")
        batched = _batched(client, batched_jobs, cycle_jobs)
        sequential = _sequential(client, sequential_jobs)
        names = [str(p["metadata"]["name"]) for p in client.managed_pods()]
    return {
        "batched": batched | {"cycle_jobs": cycle_jobs},
        "sequential": sequential,
        "pods_in_cluster": len(names),
        "exactly_the_expected_pods": sorted(names) == sorted(expected),
    }


def _median_round(rounds: int, in_process: bool, **shape: int) -> dict[str, Any]:
    results = [_round(**shape, in_process=in_process) for _ in range(rounds)]
    results.sort(key=lambda r: float(r["batched"]["pods_per_second"]))
    return {
        "batched_pods_per_second_all_rounds": [r["batched"]["pods_per_second"] for r in results],
        **results[len(results) // 2],
    }


def main(
    single_jobs: int = 500,
    gang_jobs: int = 50,
    gang_size: int = 4,
    cycle_jobs: int = 100,
    rounds: int = 3,
    parallelism: int = ClientOptions().parallelism,
) -> dict[str, object]:
    """Median round (by batched pods/s) of ``rounds``, with the API server in this process
    (sharing the interpreter and its GIL with the client) and in a child process (as a real API
    server would be). The machine's load is reported too: the figures move with it."""
    shape = {
        "single_jobs": single_jobs,
        "gang_jobs": gang_jobs,
        "gang_size": gang_size,
        "cycle_jobs": cycle_jobs,
        "parallelism": parallelism,
    }
    return {
        "name": "dispatch",
        "command": ".venv/bin/python -m benchmarks.bench_dispatch",
        "target": {"pods_per_second": 400, "latency_p99_ms": 1000},
        "rounds": rounds,
        "parallelism": parallelism,
        "server_in_process": _median_round(rounds, True, **shape),
        "server_in_child_process": _median_round(rounds, False, **shape),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
