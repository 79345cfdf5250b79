"""``/v1/arrays/{array_id}``: a job array as a whole (Slurm's ``--array=0-99%10``).

``POST /v1/jobs`` with ``array: {count, parallelism}`` creates the tasks; each is a job of its
own (``/v1/jobs/{id}`` lists, cancels, holds and edits one task). Here the whole array is read,
cancelled, held or released: cancel applies to every unfinished task, hold and release to the
queued ones (tasks already running keep running). Rights are those of the single-job routes,
judged on the array's owner and tenant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from fastapi import APIRouter
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from api.convert import job_out
from api.deps import PrincipalDep, SessionDep, visible_tenants
from api.params import JobIdPath
from api.problems import ApiProblem
from api.routers.jobs import require_owner_or_manager, run_seconds
from api.schemas import ArrayOut
from scheduler.metrics import METRICS, JobOutcome
from store import controls, jobs
from store.jobstates import JobStatus, is_final
from store.models import Job
from store.users import Principal

router = APIRouter(prefix="/v1/arrays", tags=["jobs"])


def _array_out(tasks: list[Job]) -> ArrayOut:
    first = tasks[0]
    assert first.array_id is not None
    return ArrayOut(
        array_id=first.array_id,
        tenant=first.tenant,
        count=len(tasks),
        parallelism=first.array_parallelism,
        statuses=dict(Counter(task.status for task in tasks)),
        tasks=[job_out(task) for task in tasks],
    )


def _tasks(session: Session, principal: Principal, array_id: str) -> list[Job]:
    return jobs.array_tasks(session, array_id, tenants=visible_tenants(principal))


def _act(
    session: Session,
    principal: Principal,
    array_id: str,
    applies: Callable[[Job], bool],
    act: Callable[[Job], object],
) -> ArrayOut:
    tasks = _tasks(session, principal, array_id)
    require_owner_or_manager(principal, tasks[0].tenant, tasks[0].user)
    for task in tasks:
        if applies(task):
            act(task)
    try:
        session.flush()
    except StaleDataError as error:
        raise ApiProblem(409, f"a task of array {array_id} changed concurrently; retry") from error
    return _array_out(tasks)


@router.get("/{array_id}")
def get_array(array_id: JobIdPath, session: SessionDep, principal: PrincipalDep) -> ArrayOut:
    return _array_out(_tasks(session, principal, array_id))


def _queued(task: Job) -> bool:
    return task.status == JobStatus.QUEUED.value


@router.post("/{array_id}/cancel")
def cancel_array(array_id: JobIdPath, session: SessionDep, principal: PrincipalDep) -> ArrayOut:
    """Cancel every unfinished task."""

    def cancel(task: Job) -> None:
        jobs.cancel(session, task, by=principal.user)
        METRICS.job_finished(task.tenant, task.flavor, JobOutcome.CANCELLED, run_seconds(task))

    return _act(session, principal, array_id, lambda t: not is_final(JobStatus(t.status)), cancel)


@router.post("/{array_id}/hold")
def hold_array(array_id: JobIdPath, session: SessionDep, principal: PrincipalDep) -> ArrayOut:
    """Hold every queued task (running tasks continue)."""
    return _act(
        session,
        principal,
        array_id,
        _queued,
        lambda task: controls.hold(session, task, by=principal.user),
    )


@router.post("/{array_id}/release")
def release_array(array_id: JobIdPath, session: SessionDep, principal: PrincipalDep) -> ArrayOut:
    """Release every held task."""
    return _act(
        session,
        principal,
        array_id,
        _queued,
        lambda task: controls.release(session, task, by=principal.user),
    )
