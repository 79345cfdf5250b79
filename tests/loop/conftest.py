"""Shared fixtures of the loop tests: a real database (SQLite and PostgreSQL, through the
``engine`` fixture) with one tenant, and the embedded cluster over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from k8s.client import ClusterClient
from k8s.sim.cluster import EmbeddedCluster
from scheduler.loop import ClusterView, IterationReport, LoopSettings, SchedulerLoop
from scheduler.policy import Policy
from store import jobs, tenants, users
from store.common import new_job_id
from store.db import SessionFactory, session_factory, transaction
from store.models import Job
from store.tenants import TENANT, Limits

H100_LABELS = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
V100_LABELS = {"nvidia.com/gpu.product": "Tesla-V100-SXM2-32GB"}


@dataclass
class Platform:
    sessions: SessionFactory
    cluster: EmbeddedCluster
    kubeconfig: Path

    def client(self) -> ClusterClient:
        return ClusterClient.from_kubeconfig(str(self.kubeconfig))

    def loop(
        self,
        client: ClusterClient | None = None,
        settings: LoopSettings | None = None,
        view: ClusterView | None = None,
    ) -> SchedulerLoop:
        return SchedulerLoop(
            self.sessions,
            client or self.client(),
            Policy.named("fair"),
            settings=settings,
            view=view,
        )

    def submit(
        self,
        *,
        gpus: int = 1,
        workers: int = 1,
        seconds: float = 20,
        exit_code: int | None = None,
        flavor: str = "h100",
        max_runtime_seconds: int | None = None,
        depends_on: list[dict[str, str]] | None = None,
    ) -> str:
        annotations = {"sim.yushan.io/duration-seconds": str(seconds)}
        if exit_code is not None:
            annotations["sim.yushan.io/exit-code"] = str(exit_code)
        request = jobs.JobRequest(
            tenant="lab-a",
            name="train",
            image="pytorch:latest",
            flavor=flavor,
            gpus=gpus,
            workers=workers,
            max_runtime_seconds=max_runtime_seconds,
            annotations=annotations,
            depends_on=depends_on or [],
        )
        with transaction(self.sessions) as session:
            return jobs.submit(session, request, user="alice", job_id=new_job_id()).job.id

    def job(self, job_id: str) -> Job:
        with self.sessions() as session:
            return jobs.get(session, job_id)

    def events(self, job_id: str) -> list[tuple[str | None, str, str]]:
        with self.sessions() as session:
            return [(e.from_status, e.to_status, e.reason) for e in jobs.events(session, job_id)]

    def pods(self, job_id: str) -> list[dict[str, Any]]:
        return [
            p for p in self.cluster.pods() if p["metadata"]["labels"].get("yushan.io/job") == job_id
        ]


@pytest.fixture
def platform(engine: Engine) -> Iterator[Platform]:
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        tenants.create_flavor(session, "h100", H100_LABELS, 4000, 90 * 2**30)
        tenants.create_flavor(session, "v100", V100_LABELS, 4000, 90 * 2**30)
        tenants.create_cohort(session, "academic", None)
        tenants.create_tenant(session, "lab-a", "academic", "academic", 1.0, "yushan-lab-a")
        tenants.set_quota(
            session, TENANT, "lab-a", {"h100": {"gpu": Limits(16)}, "v100": {"gpu": Limits(8)}}
        )
        users.create_user(session, "alice")
    with EmbeddedCluster(time_scale=0.05) as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(f"/tmp/yushan-kc-{id(cluster)}"))
        yield Platform(sessions, cluster, kubeconfig)
        kubeconfig.unlink(missing_ok=True)


def run_until(
    loop: SchedulerLoop, done: Callable[[], bool], timeout: float = 20.0
) -> list[IterationReport]:
    reports = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports.append(loop.run_once())
        if done():
            return reports
        time.sleep(0.05)
    raise AssertionError(f"condition not reached in {timeout}s; last report {reports[-1]}")
