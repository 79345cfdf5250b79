"""The checkpoint interval and the eviction history: stored with the job, read into the
cycle's snapshot, and the per-job eviction list kept to the last 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from scheduler.snapshots import build_snapshot, job_state
from store import jobs
from store.common import new_job_id
from store.db import SessionFactory, create_db_engine, session_factory, transaction
from store.jobstates import JobStatus
from store.migrate import upgrade

DAY = 86400.0


def submit(sessions: SessionFactory, checkpoint: int | None = None) -> str:
    request = jobs.JobRequest(
        tenant="lab-a",
        name="train",
        image="pytorch",
        flavor="h100",
        gpus=1,
        checkpoint_interval_seconds=checkpoint,
    )
    with transaction(sessions) as session:
        return jobs.submit(session, request, user="alice", job_id=new_job_id()).job.id


def evict(sessions: SessionFactory, job_id: str, at: datetime) -> None:
    """Admit, then evict and requeue the job at ``at``, as the loop does."""
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        job.placement = ["node-0"]
        jobs.transition(session, job, JobStatus.ADMITTED, "Admitted", at=at)
        jobs.transition(session, job, JobStatus.PREEMPTED, "FairSharePreemption", at=at)
        job.placement = None
        jobs.transition(session, job, JobStatus.QUEUED, "Backoff", at=at)


def test_checkpoint_interval_is_stored_and_reaches_the_snapshot(sessions: SessionFactory) -> None:
    checkpointing = submit(sessions, checkpoint=1800)
    plain = submit(sessions)

    with sessions() as session:
        snapshot = build_snapshot(session, (), datetime.now(UTC).timestamp())
    by_id = {j.id: j for j in snapshot.queued}
    assert by_id[checkpointing].checkpoint_interval_seconds == 1800
    assert by_id[plain].checkpoint_interval_seconds is None
    assert by_id[plain].evicted_at == ()


def test_evictions_are_recorded_and_only_the_last_24_hours_kept(sessions: SessionFactory) -> None:
    job_id = submit(sessions)
    now = datetime.now(UTC)
    for hours_ago in (30, 20, 2):
        evict(sessions, job_id, now - timedelta(hours=hours_ago))

    with sessions() as session:
        job = jobs.get(session, job_id)
        # Each eviction keeps those of the 24 hours before it: the one 30 h ago was dropped
        # when the one 2 h ago was recorded.
        assert job.evicted_at == [
            pytest.approx((now - timedelta(hours=20)).timestamp(), abs=1e-3),
            pytest.approx((now - timedelta(hours=2)).timestamp(), abs=1e-3),
        ]
        # The snapshot counts back from its own clock: 10 h later only one is recent.
        later = (now + timedelta(hours=10)).timestamp()
        assert list(job_state(job, later).evicted_at) == [
            pytest.approx((now - timedelta(hours=2)).timestamp(), abs=1e-3)
        ]
        assert len(job_state(job, now.timestamp()).evicted_at) == 2
        assert len(job_state(job).evicted_at) == 2


def test_other_transitions_record_no_eviction(sessions: SessionFactory) -> None:
    job_id = submit(sessions)
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        job.placement = ["node-0"]
        jobs.transition(session, job, JobStatus.ADMITTED, "Admitted")
        jobs.transition(session, job, JobStatus.RUNNING, "Running")
        jobs.transition(session, job, JobStatus.SUCCEEDED, "Succeeded")
    with sessions() as session:
        assert jobs.get(session, job_id).evicted_at == []


def test_the_migration_fills_existing_jobs(tmp_path: Path) -> None:
    """Rows written under revision 0001 get an empty eviction list and no checkpoint interval."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    db = create_db_engine(url)
    now = datetime.now(UTC).isoformat()
    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO tenants (name, kind, cohort, weight, namespace, created_at) "
                "VALUES ('lab-a', 'academic', NULL, 1.0, 'yushan-lab-a', :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO jobs (id, version, tenant, user, name, image, command, args, env, "
                "flavor, gpus, workers, cpu_milli, memory_bytes, priority, annotations, status, "
                "reason, message, attempts, created_at) VALUES ('jold000001', 1, 'lab-a', "
                "'alice', 'old', 'pytorch', '[]', '[]', '{}', 'h100', 1, 1, 4000, 1024, "
                "'normal', '{}', 'queued', 'Submitted', '', 0, :now)"
            ),
            {"now": now},
        )
    upgrade(url)
    with session_factory(db)() as session:
        job = jobs.get(session, "jold000001")
        assert job.evicted_at == []
        assert job.checkpoint_interval_seconds is None
    db.dispose()
