"""Helpers shared by the adapter's tests: waiting, placement from the live cluster, job shapes."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import yaml

from k8s.client import ClusterClient
from k8s.types import GangObservation, WorkloadSpec
from tests.k8s.builders import WorkloadBuilder, a_workload

T = TypeVar("T")

TEST_IMAGE = os.environ.get("YUSHAN_TEST_IMAGE", "busybox:1.36")
_REAL_CLUSTER = bool(os.environ.get("YUSHAN_TEST_KUBECONFIG"))
WAIT_SECONDS = float(os.environ.get("YUSHAN_TEST_WAIT_SECONDS", "180" if _REAL_CLUSTER else "30"))
"""A real cluster pulls images and honours 30 s grace periods; the embedded one is fast."""


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS) -> T:
    """Poll ``probe`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def gpu_nodes(client: ClusterClient, count: int, gpus: int = 1) -> tuple[str, ...]:
    """``count`` ready GPU nodes with ``gpus`` free (cycling if the cluster has fewer)."""
    usable = [
        n.name
        for n in client.list_nodes()
        if n.ready and not n.unschedulable and n.allocatable.gpu - n.foreign.gpu >= gpus
    ]
    assert usable, "the test cluster needs at least one ready GPU node"
    return tuple(usable[i % len(usable)] for i in range(count))


def job(
    client: ClusterClient,
    *,
    workers: int = 1,
    seconds: float = 30,
    exit_code: int = 0,
    tenant: str = "contract",
) -> WorkloadBuilder:
    """A job that runs ``seconds`` then exits with ``exit_code``, on a real or embedded cluster.

    The command does it on a real cluster; the annotations tell the embedded one.
    """
    return (
        a_workload(tenant=tenant)
        .with_(
            image=TEST_IMAGE,
            command=("sh", "-c", f"sleep {seconds}; exit {exit_code}"),
            workers=workers,
            placement=gpu_nodes(client, workers),
        )
        .lasting(seconds)
        .exiting(exit_code)
    )


def gangs(client: ClusterClient) -> dict[str, GangObservation]:
    """Every Yushan gang, from one listing (what the watch cache shows without listing)."""
    return client.snapshot()[1]


def observe(client: ClusterClient, spec: WorkloadSpec) -> GangObservation | None:
    return gangs(client).get(spec.job_id)


def phase_is(client: ClusterClient, spec: WorkloadSpec, *phases: str) -> GangObservation | None:
    observation = observe(client, spec)
    return observation if observation is not None and observation.phase in phases else None


def wait_for_gang(
    gangs: Callable[[], Mapping[str, GangObservation]],
    job_id: str,
    *phases: str,
    reason: str | None = None,
) -> GangObservation:
    """Wait until ``gangs()`` shows ``job_id`` in one of ``phases`` (and with ``reason``)."""

    def probe() -> GangObservation | None:
        gang = gangs().get(job_id)
        if gang is None or gang.phase not in phases:
            return None
        return gang if reason is None or gang.reason == reason else None

    return wait_for(probe, f"job {job_id} to be {'/'.join(phases)} {reason or ''}")


def dead_kubeconfig(directory: Path) -> Path:
    """A kubeconfig pointing at a loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "gone", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}],
    }
    path = directory / "dead-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path
