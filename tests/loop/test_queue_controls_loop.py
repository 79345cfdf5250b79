"""Queue controls through the real loop (database, embedded cluster): a held job is never
admitted, a draining tenant's jobs are stopped and requeued, dependencies gate and fail jobs,
per-user limits keep jobs waiting — and each says why."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from scheduler.loop import LoopSettings
from store import controls, jobs, tenants
from store.common import as_utc, new_job_id
from store.db import transaction
from store.models import Job
from tests.loop.conftest import Platform, run_until


def test_a_held_job_waits_with_reason_held_until_released(platform: Platform) -> None:
    job_id = platform.submit()
    with transaction(platform.sessions) as session:
        controls.hold(session, jobs.get(session, job_id), by="alice")
    loop = platform.loop()
    for _ in range(3):
        loop.run_once()
    job = platform.job(job_id)
    assert (job.status, job.reason, job.message) == (
        "queued",
        "Held",
        "held; release it to let it start",
    )
    assert platform.pods(job_id) == []
    with transaction(platform.sessions) as session:
        controls.release(session, jobs.get(session, job_id), by="alice")
    run_until(loop, lambda: platform.job(job_id).status == "running")


def test_a_draining_tenant_stops_its_jobs_and_requeues_them_without_backoff(
    platform: Platform,
) -> None:
    job_id = platform.submit(seconds=600)
    loop = platform.loop()
    run_until(loop, lambda: platform.job(job_id).status == "running")
    with transaction(platform.sessions) as session:
        controls.set_stop_policy(session, "tenant", "lab-a", "hold_and_drain")
    run_until(loop, lambda: platform.job(job_id).status == "queued" and not platform.pods(job_id))
    job = platform.job(job_id)
    assert job.attempts == 1
    assert job.not_before is None
    assert job.reason == "TenantHeld"
    assert "hold_and_drain" in job.message
    assert [e[2] for e in platform.events(job_id)][-2:] == ["Drained", "Drained"]
    with transaction(platform.sessions) as session:
        controls.set_stop_policy(session, "tenant", "lab-a", "open")
    run_until(loop, lambda: platform.job(job_id).status == "running")


def test_dependencies_gate_start_and_fail_what_can_never_start(platform: Platform) -> None:
    first = platform.submit(seconds=20)
    after_ok = platform.submit(depends_on=[{"job": first, "condition": "succeeded"}])
    after_not_ok = platform.submit(depends_on=[{"job": first, "condition": "failed"}])
    loop = platform.loop()
    loop.run_once()
    waiting = platform.job(after_ok)
    assert (waiting.status, waiting.reason) == ("queued", "Dependency")
    assert waiting.message == f"waiting for job(s) {first} (succeeded)"
    run_until(loop, lambda: platform.job(after_ok).status == "running")
    assert platform.job(first).status == "succeeded"
    failed = platform.job(after_not_ok)
    assert (failed.status, failed.reason) == ("failed", "DependencyNeverSatisfied")


def test_per_user_limits_keep_jobs_waiting_with_reason_user_limit(platform: Platform) -> None:
    with transaction(platform.sessions) as session:
        tenant = tenants.get_tenant(session, "lab-a")
        controls.set_tenant_defaults(tenant, controls.Limits(max_running_jobs=1))
    ids = [platform.submit(seconds=600) for _ in range(3)]
    loop = platform.loop()
    for _ in range(3):
        loop.run_once()
    with platform.sessions() as session:
        rows = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(ids)))}
    statuses = sorted(rows[i].status for i in ids)
    assert statuses[:2] == ["queued", "queued"] or statuses[1:] == ["queued", "queued"]
    assert len([s for s in statuses if s in {"admitted", "running"}]) == 1
    waiting = [rows[i] for i in ids if rows[i].status == "queued"]
    assert {j.reason for j in waiting} == {"UserLimit"}
    assert waiting[0].message.startswith(
        "user alice runs 1 job(s) in lab-a, the limit is 1 (max_running_jobs)"
    )


def test_an_array_runs_at_most_its_parallelism_with_its_index_in_the_environment(
    platform: Platform,
) -> None:
    request = jobs.JobRequest(
        tenant="lab-a",
        name="sweep",
        image="pytorch:latest",
        flavor="h100",
        gpus=1,
        annotations={"sim.yushan.io/duration-seconds": "10"},
        array_count=3,
        array_parallelism=1,
    )
    with transaction(platform.sessions) as session:
        array_id = jobs.submit(session, request, user="alice", job_id=new_job_id()).job.array_id
        assert array_id is not None
        ids = [t.id for t in jobs.array_tasks(session, array_id, tenants=None)]
    loop = platform.loop()
    most = 0
    environments: dict[str, str] = {}
    reasons: set[str] = set()

    def done() -> bool:
        nonlocal most
        rows = [platform.job(i) for i in ids]
        statuses = [row.status for row in rows]
        reasons.update(row.reason for row in rows if row.status == "queued")
        most = max(most, sum(s in {"admitted", "running"} for s in statuses))
        for job_id in ids:
            for pod in platform.pods(job_id):
                env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
                environments[job_id] = env["YUSHAN_ARRAY_INDEX"]
        return statuses == ["succeeded"] * 3

    run_until(loop, done, timeout=30.0)
    assert most == 1
    assert environments == {job_id: str(index) for index, job_id in enumerate(ids)}
    assert "ArrayLimit" in reasons


def test_waiting_jobs_get_an_estimated_start(platform: Platform) -> None:
    first = platform.submit(seconds=600, gpus=8, workers=2, max_runtime_seconds=900)
    second = platform.submit(seconds=60, gpus=8, workers=2, max_runtime_seconds=900)
    loop = platform.loop()
    run_until(loop, lambda: platform.job(second).estimated_start is not None)
    started = platform.job(first).admitted_at
    waiting = platform.job(second)
    assert started is not None
    assert waiting.estimated_start is not None
    expected = as_utc(started).timestamp() + 900
    assert as_utc(waiting.estimated_start).timestamp() == pytest.approx(expected, abs=1)
    assert waiting.estimate_is_bound is False
    assert "estimated to start at" in waiting.message


def test_no_estimates_when_turned_off(platform: Platform) -> None:
    platform.submit(seconds=600, gpus=8, workers=2, max_runtime_seconds=900)
    second = platform.submit(seconds=60, gpus=8, workers=2, max_runtime_seconds=900)
    loop = platform.loop(settings=LoopSettings(estimated_per_tenant=0))
    for _ in range(3):
        loop.run_once()
    waiting = platform.job(second)
    assert waiting.status == "queued"
    assert waiting.estimated_start is None
    assert "estimated" not in waiting.message


def test_estimates_follow_the_queue_cycle_by_cycle(platform: Platform) -> None:
    """A job that starts waiting gets its estimate within a cycle or two, not after a fixed
    interval (a cheap projection runs after every cycle)."""
    platform.submit(seconds=600, gpus=8, workers=2, max_runtime_seconds=900)
    second = platform.submit(seconds=60, gpus=8, workers=2, max_runtime_seconds=900)
    loop = platform.loop()
    run_until(loop, lambda: platform.job(second).estimated_start is not None)
    third = platform.submit(seconds=60, gpus=8, workers=2, max_runtime_seconds=900)
    for _ in range(3):
        loop.run_once()
    estimate = platform.job(third).estimated_start
    before = platform.job(second).estimated_start
    assert estimate is not None
    assert before is not None
    assert estimate > before


def test_slow_projections_take_at_most_a_tenth_of_the_loop(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A projection that took 0.2 s is not repeated for 2 s, however often the loop cycles."""
    import time as clock

    from scheduler import estimate
    from scheduler import loop as loop_module

    calls: list[float] = []
    real_project = estimate.project

    def slow_project(*args: Any, **kwargs: Any) -> Any:
        calls.append(clock.monotonic())
        clock.sleep(0.2)
        return real_project(*args, **kwargs)

    monkeypatch.setattr(loop_module, "project", slow_project)
    platform.submit(seconds=600, gpus=8, workers=2, max_runtime_seconds=900)
    platform.submit(seconds=60, gpus=8, workers=2, max_runtime_seconds=900)
    loop = platform.loop()
    started = clock.monotonic()
    while clock.monotonic() - started < 1.5:
        loop.run_once()
    assert len(calls) == 1
