"""The scheduler loop end to end: a real database (SQLite and PostgreSQL), the embedded cluster
over real HTTP, the official client. Jobs go queued → admitted → running → final, pods land on
the chosen nodes, and crashes or lost nodes lose no job and duplicate no pod."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from k8s.client import ClusterClient
from scheduler.loop import LoopSettings
from scheduler.metrics import METRICS
from store import jobs, tenants
from store.common import new_job_id
from store.db import transaction
from store.jobstates import JobStatus
from store.models import Job
from store.tenants import TENANT, Limits
from tests.loop.conftest import Platform, run_until


def test_gang_lands_whole_on_its_flavor_and_succeeds(platform: Platform) -> None:
    job_id = platform.submit(gpus=4, workers=2, seconds=20)
    loop = platform.loop()
    run_until(loop, lambda: platform.job(job_id).status == "succeeded")
    pods = platform.pods(job_id)
    assert sorted(p["metadata"]["name"] for p in pods) == [f"{job_id}-0", f"{job_id}-1"]
    nodes = {p["spec"]["nodeName"] for p in pods}
    assert all(n.startswith("h100-") for n in nodes)
    assert nodes == set(platform.job(job_id).placement or ())
    assert [e[1] for e in platform.events(job_id)] == [
        "queued",
        "admitted",
        "running",
        "succeeded",
    ]


def admitted_count() -> float:
    value = METRICS.registry.get_sample_value(
        "yushan_jobs_admitted_total", {"tenant": "lab-a", "flavor": "h100"}
    )
    return value or 0.0


def test_a_job_changed_during_the_cycle_loses_only_its_own_decision(
    platform: Platform,
) -> None:
    job_id = platform.submit()
    others = [platform.submit() for _ in range(2)]
    before = admitted_count()
    loop = platform.loop()
    original = loop._persist

    def lose_the_race_then_persist(session: Session, *args: Any) -> None:
        # Another writer changed the job after the cycle read it (as a user's cancel through
        # the API would): its version moved, so the loop's update of the row it read must fail.
        bump = update(Job).where(Job.id == job_id).values(version=Job.version + 1)
        session.execute(bump.execution_options(synchronize_session=False))
        original(session, *args)

    loop._persist = lose_the_race_then_persist  # type: ignore[method-assign,assignment]
    report = loop.run_once()
    assert not report.conflict
    assert report.skipped == [job_id]
    assert sorted(report.admitted) == sorted(others)
    assert admitted_count() == before + 2  # the dropped decision is not counted
    assert platform.job(job_id).status == "queued"
    assert platform.pods(job_id) == []
    assert {platform.job(j).status for j in others} == {"admitted"}
    assert all(len(platform.pods(j)) == 1 for j in others)
    assert loop.wake.is_set()  # the skipped job is decided again at once


def test_failing_worker_fails_the_job_with_its_exit_code(platform: Platform) -> None:
    job_id = platform.submit(seconds=5, exit_code=3)
    run_until(platform.loop(), lambda: platform.job(job_id).status == "failed")
    job = platform.job(job_id)
    assert job.exit_code == 3
    assert "3" in job.message
    loop = platform.loop()
    for _ in range(3):
        loop.run_once()
    assert [p["status"]["phase"] for p in platform.pods(job_id)] == ["Failed"]  # kept for logs
    platform.loop().recover()  # a restarted scheduler keeps it too
    assert [p["status"]["phase"] for p in platform.pods(job_id)] == ["Failed"]


def test_finished_pods_are_removed_after_their_ttl(platform: Platform) -> None:
    job_id = platform.submit(seconds=5)
    loop = platform.loop(settings=LoopSettings(finished_pod_ttl_seconds=0.5))
    run_until(loop, lambda: platform.job(job_id).status == "succeeded")
    assert platform.pods(job_id)
    run_until(loop, lambda: not platform.pods(job_id))


def test_cancel_removes_the_pods(platform: Platform) -> None:
    job_id = platform.submit(gpus=2, workers=2, seconds=3600)
    loop = platform.loop()
    run_until(loop, lambda: platform.job(job_id).status == "running")
    with transaction(platform.sessions) as session:
        jobs.cancel(session, jobs.get(session, job_id), by="alice")
    run_until(loop, lambda: not platform.pods(job_id))
    assert platform.job(job_id).status == "cancelled"


def test_lost_node_requeues_the_job_with_backoff(platform: Platform) -> None:
    job_id = platform.submit(gpus=8, seconds=3600)
    loop = platform.loop()
    run_until(loop, lambda: platform.job(job_id).status == "running")
    node = (platform.job(job_id).placement or [""])[0]
    platform.cluster.remove_node(node)
    run_until(loop, lambda: platform.job(job_id).status == "queued")
    job = platform.job(job_id)
    assert job.attempts == 1
    assert job.not_before is not None
    assert ("running", "preempted") in [(e[0], e[1]) for e in platform.events(job_id)]


def test_full_jobs_wait_with_a_reason(platform: Platform) -> None:
    running = [platform.submit(gpus=8, seconds=3600) for _ in range(2)]
    waiting = platform.submit(gpus=8, seconds=3600)
    loop = platform.loop()
    run_until(loop, lambda: all(platform.job(j).status == "running" for j in running))
    job = platform.job(waiting)
    assert job.status == "queued"
    assert job.queue_position == 1
    assert job.reason
    assert "h100" in job.message


class CrashingClient(ClusterClient):
    """Dies (like a killed process) right before it would create the pods."""

    def dispatch_many(self, specs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt("scheduler killed")


def test_crash_between_admission_and_dispatch_loses_nothing(platform: Platform) -> None:
    job_ids = [platform.submit(gpus=4, workers=2, seconds=3600) for _ in range(2)]
    crashing = platform.loop(CrashingClient.from_kubeconfig(str(platform.kubeconfig)))
    with pytest.raises(KeyboardInterrupt):
        crashing.run_once()
    assert {platform.job(j).status for j in job_ids} == {"admitted"}
    assert platform.cluster.pods() == []
    for _ in range(3):  # several restarts in a row: still exactly one pod per worker
        restarted = platform.loop()
        restarted.recover()
        restarted.run_once()
    run_until(platform.loop(), lambda: all(platform.job(j).status == "running" for j in job_ids))
    names = [p["metadata"]["name"] for p in platform.cluster.pods()]
    assert sorted(names) == sorted(f"{j}-{i}" for j in job_ids for i in range(2))


def test_unreachable_cluster_leaves_jobs_waiting_with_a_reason(platform: Platform) -> None:
    job_id = platform.submit()
    loop = platform.loop()
    platform.cluster.stop()
    report = loop.run_once()
    assert report.cluster_error
    job = platform.job(job_id)
    assert job.status == JobStatus.QUEUED
    assert job.reason == "ClusterUnreachable"


def test_waiting_jobs_of_two_tenants_take_their_places_in_one_queue(platform: Platform) -> None:
    """The loop writes each waiting job's place in the whole queue (not in its tenant's)."""
    with transaction(platform.sessions) as session:
        tenants.create_tenant(session, "lab-b", "academic", "academic", 1.0, "yushan-lab-b")
        tenants.set_quota(session, TENANT, "lab-b", {"h100": {"gpu": Limits(16)}})

    def submit(tenant: str) -> str:
        request = jobs.JobRequest(
            tenant=tenant,
            name="train",
            image="pytorch:latest",
            flavor="h100",
            gpus=8,
            annotations={"sim.yushan.io/duration-seconds": "3600"},
        )
        with transaction(platform.sessions) as session:
            return jobs.submit(session, request, user="alice", job_id=new_job_id()).job.id

    running = [submit(tenant) for tenant in ("lab-a", "lab-b") for _ in range(2)]
    waiting = [submit(tenant) for tenant in ("lab-a", "lab-b") for _ in range(2)]
    loop = platform.loop()
    run_until(loop, lambda: all(platform.job(j).status == "running" for j in running))
    loop.run_once()
    places = sorted(platform.job(j).queue_position or 0 for j in waiting)
    assert places == [1, 2, 3, 4]
