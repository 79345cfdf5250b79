"""Group commit of submissions (:mod:`store.submissions`), on both backends: a group is one
transaction, yet each submission gets its own outcome, and none is lost or stored twice."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select

from store import jobs
from store.common import as_utc, new_job_id
from store.db import SessionFactory, session_factory, transaction
from store.errors import InvalidRequest, LimitExceeded
from store.models import Job, JobEvent, Tenant
from store.notify import signal_job_changes
from store.submissions import SubmissionWriter, _Submission
from tests.statements import recorded_statements
from tests.store.conftest import REQUEST


def submission(request: jobs.JobRequest = REQUEST, job_id: str | None = None) -> _Submission:
    return _Submission(request, "alice", job_id or new_job_id(), None)


def write_group(writer: SubmissionWriter, *group: _Submission) -> list[Future[jobs.Submitted]]:
    """One step of the writer thread, on a group made up front (the thread takes whatever is
    queued, which a test cannot arrange without racing it)."""
    writer._write(list(group))
    return [s.future for s in group]


def stored(sessions: SessionFactory) -> tuple[list[str], int]:
    with sessions() as session:
        ids = list(session.scalars(select(Job.id).order_by(Job.seq)))
        events = session.scalar(select(func.count()).select_from(JobEvent)) or 0
    return ids, events


def test_a_group_commits_once_and_every_submission_gets_its_own_job(
    sessions: SessionFactory,
) -> None:
    writer = SubmissionWriter(sessions)
    futures = write_group(writer, *(submission() for _ in range(5)))
    ids = [f.result(0).job.id for f in futures]
    assert writer.groups == 1
    assert stored(sessions) == (ids, 5)


def test_a_refused_submission_fails_alone(sessions: SessionFactory) -> None:
    writer = SubmissionWriter(sessions)
    unknown = jobs.JobRequest(tenant="lab-a", name="x", image="pytorch", flavor="a100", gpus=1)
    first, refused, last = write_group(writer, submission(), submission(unknown), submission())
    with pytest.raises(InvalidRequest, match="unknown flavor 'a100'"):
        refused.result(0)
    assert writer.groups == 1
    assert stored(sessions) == ([first.result(0).job.id, last.result(0).job.id], 2)


def test_a_database_error_in_a_group_retries_each_submission_alone(
    sessions: SessionFactory,
) -> None:
    """A job id already taken makes the group's INSERT fail: the others are written one by
    one, the clashing one fails on its own, and nothing is stored twice."""
    taken = new_job_id()
    with transaction(sessions) as session:
        jobs.submit(session, REQUEST, user="alice", job_id=taken)
    writer = SubmissionWriter(sessions)
    first, clash, last = write_group(writer, submission(), submission(job_id=taken), submission())
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        clash.result(0)
    assert writer.groups == 0
    assert stored(sessions) == ([taken, first.result(0).job.id, last.result(0).job.id], 3)


def test_the_queued_limit_counts_the_groups_earlier_jobs(sessions: SessionFactory) -> None:
    with transaction(sessions) as session:
        row = session.get(Tenant, "lab-a")
        assert row is not None
        row.max_queued_jobs_per_user = 2
    writer = SubmissionWriter(sessions)
    futures = write_group(writer, *(submission() for _ in range(4)))
    for refused in futures[2:]:
        with pytest.raises(LimitExceeded, match="limit is 2"):
            refused.result(0)
    assert stored(sessions) == ([f.result(0).job.id for f in futures[:2]], 2)


def test_a_job_may_depend_on_one_submitted_earlier_in_the_same_group(
    sessions: SessionFactory,
) -> None:
    parent = submission()
    request = jobs.JobRequest(
        tenant="lab-a",
        name="eval",
        image="pytorch",
        flavor="h100",
        gpus=1,
        depends_on=[{"job": parent.job_id, "condition": "succeeded"}],
    )
    writer = SubmissionWriter(sessions)
    _, child = write_group(writer, parent, submission(request))
    assert child.result(0).job.depends_on == [{"job": parent.job_id, "condition": "succeeded"}]


def test_concurrent_callers_all_get_their_job_through_the_thread(
    sessions: SessionFactory,
) -> None:
    writer = SubmissionWriter(sessions)
    barrier = threading.Barrier(16)
    results: list[str] = []

    def submit() -> None:
        barrier.wait()
        future = writer.submit(REQUEST, user="alice", job_id=new_job_id())
        results.append(future.result(30).job.id)

    threads = [threading.Thread(target=submit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    ids, events = stored(sessions)
    assert sorted(ids) == sorted(results)
    assert events == 16
    again = writer.submit(REQUEST, user="alice", job_id=new_job_id())  # as after an app restart
    assert again.result(30).job.id in stored(sessions)[0]
    writer.close()


def test_alike_submissions_of_a_group_read_their_facts_once(
    sessions: SessionFactory, engine: Engine
) -> None:
    with recorded_statements(engine) as statements:
        write_group(SubmissionWriter(sessions), *(submission() for _ in range(5)))
    reads = [s for s in statements if "FROM flavors" in s]
    assert len(reads) == 1


def test_a_group_signals_the_scheduler_once_after_its_commit(
    sessions: SessionFactory, engine: Engine
) -> None:
    """The group's rows go in as Core INSERTs, which the ORM's flush hook does not see: the
    writer signals itself (one callback after the commit; one NOTIFY on PostgreSQL)."""
    hooked = session_factory(engine)
    calls: list[int] = []
    signal_job_changes(hooked, lambda: calls.append(1))
    with recorded_statements(engine) as statements:
        write_group(SubmissionWriter(hooked), *(submission() for _ in range(3)))
    assert calls == [1]
    notifies = [s for s in statements if "pg_notify" in s]
    assert len(notifies) == (1 if engine.dialect.name == "postgresql" else 0)


def test_the_job_a_group_answers_with_is_the_stored_row(sessions: SessionFactory) -> None:
    """A group's job is answered from the values it inserted (not read back): every column but
    the database's own numbering matches the stored row."""
    request = jobs.JobRequest(
        tenant="lab-a",
        name="sweep",
        image="pytorch",
        flavor="h100",
        gpus=1,
        env={"A": "1"},
        array_count=2,
    )
    futures = write_group(SubmissionWriter(sessions), submission(), submission(request))
    with sessions() as session:
        for future in futures:
            answered = future.result(0).job
            row = session.scalar(select(Job).where(Job.id == answered.id))
            assert row is not None
            for column in (c.name for c in Job.__table__.columns):
                if column in ("seq", "version"):
                    continue
                mine, theirs = getattr(answered, column), getattr(row, column)
                if isinstance(theirs, datetime):
                    mine, theirs = as_utc(mine), as_utc(theirs)
                assert mine == theirs, column
            assert row.version == 1
        # unplaced means SQL NULL, as the ORM stored it (a JSON column given None stores 'null')
        unplaced = session.scalars(select(Job.id).where(Job.placement.is_(None))).all()
        assert len(unplaced) == 3
