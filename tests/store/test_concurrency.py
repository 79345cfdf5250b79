"""Several writers on one database: no lost update, no job counted twice (both backends)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from store import controls, jobs, tenants
from store.common import new_job_id
from store.db import SessionFactory, transaction
from store.errors import LimitExceeded
from store.jobstates import JobStatus
from store.models import Job, JobEvent
from tests.store.conftest import REQUEST


def test_concurrent_retries_with_one_idempotency_key_create_one_job(
    sessions: SessionFactory,
) -> None:
    factory = sessions
    barrier = threading.Barrier(8)
    ids: list[str] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            barrier.wait()
            with transaction(factory) as session:
                submitted = jobs.submit(
                    session, REQUEST, user="alice", job_id=new_job_id(), idempotency_key="k1"
                )
                ids.append(submitted.job.id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 1
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1


def test_a_stale_writer_cannot_overwrite_a_concurrent_transition(sessions: SessionFactory) -> None:
    factory = sessions
    with transaction(factory) as session:
        job_id = jobs.submit(session, REQUEST, user="alice", job_id=new_job_id()).job.id
    scheduler = factory()
    api = factory()
    admitted = jobs.get(scheduler, job_id)
    cancelled = jobs.get(api, job_id)
    jobs.transition(scheduler, admitted, JobStatus.ADMITTED, "Admitted")
    scheduler.commit()
    jobs.cancel(api, cancelled, by="alice")
    with pytest.raises(StaleDataError):
        api.commit()
    api.rollback()
    scheduler.close()
    api.close()
    with factory() as session:
        assert jobs.get(session, job_id).status == "admitted"
        statuses = session.scalars(
            select(JobEvent.to_status).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        ).all()
        assert list(statuses) == ["queued", "admitted"]


def test_concurrent_submissions_cannot_both_slip_under_the_queued_limit(
    sessions: SessionFactory,
) -> None:
    factory = sessions
    with transaction(factory) as session:
        tenant = tenants.get_tenant(session, "lab-a")
        controls.set_tenant_defaults(tenant, controls.Limits(max_queued_jobs=3))
    barrier = threading.Barrier(8)
    refused: list[LimitExceeded] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            barrier.wait()
            with transaction(factory) as session:
                jobs.submit(session, REQUEST, user="alice", job_id=new_job_id())
        except LimitExceeded as error:
            refused.append(error)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(refused) == 5
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 3
