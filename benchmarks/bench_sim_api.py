"""Throughput of the embedded API server: pod creates per second from one official client.

Run: ``.venv/bin/python -m benchmarks.bench_sim_api [--pods N]``. Pods are created unbound
(so the simulated kubelet stays idle) and then bound ones are created to include its work.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from kubernetes import client

from k8s.sim import EmbeddedCluster


def _pod(name: str, node: str | None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"bench": "sim"}),
        spec=client.V1PodSpec(
            node_name=node,
            restart_policy="Never",
            containers=[client.V1Container(name="main", image="busybox")],
        ),
    )


def _creates_per_second(core: Any, count: int, prefix: str, bound: bool) -> float:
    started = time.perf_counter()
    for index in range(count):
        node = f"h100-{index % 4}" if bound else None
        core.create_namespaced_pod("default", _pod(f"{prefix}-{index}", node))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=1000)
    args = parser.parse_args()
    with EmbeddedCluster(time_scale=0.001) as cluster:
        api_client: Any = cluster.api_client()
        core: Any = client.CoreV1Api(api_client)
        unbound = _creates_per_second(core, args.pods, "unbound", bound=False)
        bound = _creates_per_second(core, args.pods, "bound", bound=True)
        started = time.perf_counter()
        listed = len(core.list_namespaced_pod("default").items)
        list_seconds = time.perf_counter() - started
        api_client.close()
    print(f"unbound pod creates/s: {unbound:.0f}")
    print(f"bound pod creates/s (kubelet active): {bound:.0f}")
    print(f"list of {listed} pods: {list_seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
