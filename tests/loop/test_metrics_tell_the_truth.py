"""Scrape a running loop and check that each documented series moves when it should.

Every series below used to be wrong in production: admitted jobs and weighted fair share were
always 0 (the loop never passed what they need), decayed usage held an average GPU count, the
``timed_out`` and ``cancelled`` outcomes and ``result="error"`` cycles were never emitted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from api.app import create_app, prepare_database
from api.settings import ApiSettings
from k8s.errors import ClusterUnreachable
from k8s.types import GangObservation, NodeInfo
from scheduler.loop import ClusterView, SchedulerLoop
from scheduler.metrics import METRICS
from scheduler.policy import Policy
from store import jobs
from store.common import new_job_id
from store.db import transaction
from tests.api.builders import ApiDriver, a_job
from tests.api.conftest import ADMIN_TOKEN
from tests.loop.conftest import Platform

LAB_A = {"tenant": "lab-a", "flavor": "h100"}


def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    payload, _ = METRICS.render()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(payload.decode())
        for sample in family.samples
    }


def value(name: str, **labels: str) -> float:
    return scrape().get((name, frozenset(labels.items())), 0.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class PodsNeverShow:
    """A cluster view in which pods never appear: admitted jobs stay admitted."""

    def __init__(self, inner: ClusterView) -> None:
        self.inner = inner

    def snapshot(self) -> tuple[list[NodeInfo], dict[str, GangObservation]]:
        nodes, _ = self.inner.snapshot()
        return nodes, {}


class Unreachable:
    def snapshot(self) -> tuple[list[NodeInfo], dict[str, GangObservation]]:
        raise ClusterUnreachable("connection refused")


def _submit(platform: Platform, *, gpus: int, max_runtime: int | None = None) -> str:
    request = jobs.JobRequest(
        tenant="lab-a",
        name="train",
        image="pytorch:latest",
        flavor="h100",
        gpus=gpus,
        annotations={"sim.yushan.io/duration-seconds": "600"},
        max_runtime_seconds=max_runtime,
    )
    with transaction(platform.sessions) as session:
        return jobs.submit(session, request, user="alice", job_id=new_job_id()).job.id


def _loop(platform: Platform, clock: FakeClock, view: ClusterView | None = None) -> SchedulerLoop:
    client = platform.client()
    return SchedulerLoop(
        platform.sessions,
        client,
        Policy.named("fair"),
        clock=clock,
        view=view or PodsNeverShow(client),
    )


def test_admitted_jobs_fair_share_and_decayed_usage_in_gpu_seconds(platform: Platform) -> None:
    clock = FakeClock()
    loop = _loop(platform, clock)
    _submit(platform, gpus=2)
    loop.run_once()  # admits
    loop.run_once()  # sees it admitted, without running pods
    assert value("yushan_tenant_admitted_jobs", **LAB_A) == 1
    assert value("yushan_tenant_running_jobs", **LAB_A) == 0
    # lab-a is the only tenant with GPU quota: it is entitled to all of it.
    assert value("yushan_tenant_weighted_fair_share", tenant="lab-a") == pytest.approx(1.0)

    before = value("yushan_tenant_decayed_usage_gpu_seconds", tenant="lab-a")
    clock.now += 100
    loop.run_once()  # accrues 2 GPUs x 100 s
    loop.run_once()  # publishes what was accrued
    after = value("yushan_tenant_decayed_usage_gpu_seconds", tenant="lab-a")
    # 200 GPU-seconds, slightly decayed (the half-life is days); never an average of ~0.0002.
    assert after - before == pytest.approx(200, rel=0.01)
    assert math.isfinite(after)


def test_a_job_past_its_time_limit_counts_as_timed_out(platform: Platform) -> None:
    clock = FakeClock()
    loop = _loop(platform, clock)
    labels = {**LAB_A, "outcome": "timed_out"}
    failed = {**LAB_A, "outcome": "failed"}
    before = value("yushan_jobs_finished_total", **labels)
    failed_before = value("yushan_jobs_finished_total", **failed)
    job_id = _submit(platform, gpus=1, max_runtime=60)
    loop.run_once()
    clock.now += 3600
    for _ in range(3):
        loop.run_once()
    assert platform.job(job_id).reason == "DeadlineExceeded"
    assert value("yushan_jobs_finished_total", **labels) == before + 1
    assert value("yushan_jobs_finished_total", **failed) == failed_before


def test_a_cycle_that_cannot_see_the_cluster_is_an_error(platform: Platform) -> None:
    loop = _loop(platform, FakeClock(), view=Unreachable())
    before = value("yushan_scheduling_cycle_duration_seconds_count", result="error")
    loop.run_once()
    assert value("yushan_scheduling_cycle_duration_seconds_count", result="error") == before + 1


@pytest.fixture
def api(database_url: str, engine: Engine) -> Iterator[ApiDriver]:
    settings = ApiSettings(database_url=database_url, bootstrap_token=ADMIN_TOKEN)
    prepare_database(settings, engine)
    with TestClient(create_app(settings, engine)) as client:
        yield ApiDriver(client, ADMIN_TOKEN)


def test_a_cancelled_job_counts_as_cancelled(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    alice = api.user_with_token("alice", "lab-a")
    job = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    labels = {**LAB_A, "outcome": "cancelled"}
    before = value("yushan_jobs_finished_total", **labels)
    alice.ok(alice.post(f"/v1/jobs/{job['id']}/cancel"))
    assert value("yushan_jobs_finished_total", **labels) == before + 1
