"""``/v1/jobs/{id}/hold``, ``/release`` and ``PATCH /v1/jobs/{id}``: Slurm's
``scontrol hold|release|update`` for queued jobs; ``GET /v1/jobs/{id}/estimate``: its projected
start on demand (``squeue --start``, :mod:`scheduler.estimate`).

Owners act on their own jobs, tenant admins on any job of their tenant (as for cancel). Only
queued jobs can be held, released or edited: anything else is 409. In an edit the owner may
lower the priority and the time limit; raising either (or removing the limit) needs the
tenant-admin role, like Slurm, where users may only lower their jobs' limits.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from api.convert import job_out
from api.deps import MANAGE_ROLES, PolicyDep, PrincipalDep, SessionDep, visible_tenants
from api.params import JobIdPath
from api.problems import ApiProblem
from api.routers.jobs import require_owner_or_manager
from api.schemas import JobEstimateOut, JobOut, JobPatch
from scheduler.cycle import explain_queue
from scheduler.estimate import ESTIMATED_PER_TENANT, project
from scheduler.snapshots import build_snapshot, stored_nodes
from store import controls, jobs
from store.jobs import PRIORITIES
from store.jobstates import JobStatus
from store.models import Job
from store.users import Principal

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _flush(session: Session, job_id: str, action: str) -> None:
    try:
        session.flush()
    except StaleDataError as error:
        raise ApiProblem(409, f"job {job_id} changed concurrently; retry the {action}") from error


def _own_or_managed(session: Session, principal: Principal, job_id: str) -> Job:
    job = jobs.get(session, job_id, tenants=visible_tenants(principal))
    require_owner_or_manager(principal, job.tenant, job.user)
    return job


@router.post("/{job_id}/hold")
def hold_job(job_id: JobIdPath, session: SessionDep, principal: PrincipalDep) -> JobOut:
    """Keep a queued job from starting until it is released (idempotent)."""
    job = _own_or_managed(session, principal, job_id)
    controls.hold(session, job, by=principal.user)
    _flush(session, job_id, "hold")
    return job_out(job)


@router.post("/{job_id}/release")
def release_job(job_id: JobIdPath, session: SessionDep, principal: PrincipalDep) -> JobOut:
    """Let a held job start again (idempotent)."""
    job = _own_or_managed(session, principal, job_id)
    controls.release(session, job, by=principal.user)
    _flush(session, job_id, "release")
    return job_out(job)


def _is_manager(principal: Principal, tenant: str) -> bool:
    return principal.is_admin or principal.roles.get(tenant) in MANAGE_ROLES


@router.patch("/{job_id}")
def patch_job(
    job_id: JobIdPath, body: JobPatch, session: SessionDep, principal: PrincipalDep
) -> JobOut:
    job = _own_or_managed(session, principal, job_id)
    fields = body.model_fields_set
    clear_limit = "max_runtime_seconds" in fields and body.max_runtime_seconds is None
    if not _is_manager(principal, job.tenant):
        _refuse_raises(job, body, clear_limit)
    change = controls.JobEdit(
        name=body.name,
        priority=body.priority,
        max_runtime_seconds=body.max_runtime_seconds,
        clear_max_runtime=clear_limit,
        depends_on=None if body.depends_on is None else [d.model_dump() for d in body.depends_on],
    )
    controls.edit(session, job, change, by=principal.user)
    _flush(session, job_id, "update")
    return job_out(job)


def _refuse_raises(job: Job, body: JobPatch, clear_limit: bool) -> None:
    if body.priority is not None and PRIORITIES.index(body.priority) > PRIORITIES.index(
        job.priority
    ):
        raise ApiProblem(
            403,
            f"raising the priority of job {job.id} from {job.priority} to {body.priority} "
            "needs the tenant-admin role",
            errors=[{"field": "body.priority", "message": "only a tenant admin may raise it"}],
        )
    current = job.max_runtime_seconds
    raising = clear_limit and current is not None
    if body.max_runtime_seconds is not None and current is not None:
        raising = body.max_runtime_seconds > current
    elif body.max_runtime_seconds is not None:
        raising = False  # setting a limit where there was none lowers it
    if raising:
        raise ApiProblem(
            403,
            f"raising the time limit of job {job.id} needs the tenant-admin role",
            errors=[
                {"field": "body.max_runtime_seconds", "message": "only a tenant admin may raise it"}
            ],
        )


@router.get("/{job_id}/estimate")
def estimate_job(
    job_id: JobIdPath, session: SessionDep, principal: PrincipalDep, policy: PolicyDep
) -> JobEstimateOut:
    """Project the job's start now, with every job of its tenant ahead of it and the first jobs
    of the other tenants."""
    job = jobs.get(session, job_id, tenants=visible_tenants(principal))
    if job.status != JobStatus.QUEUED.value:
        raise ApiProblem(409, f"job {job_id} is {job.status}; only queued jobs have an estimate")
    snapshot = build_snapshot(session, stored_nodes(session), time.time())
    order = explain_queue(snapshot, policy, None)
    mine = next((e for e in order if e.job_id == job_id), None)
    tenant_of = {j.id: j.tenant for j in snapshot.queued}
    window = [
        e.job_id
        for e in order
        if e.tenant_position <= ESTIMATED_PER_TENANT
        or (
            mine is not None
            and tenant_of[e.job_id] == job.tenant
            and e.tenant_position <= mine.tenant_position
        )
    ]
    estimate = project(snapshot, policy, [job_id], window=window).get(job_id)
    if estimate is None:
        return JobEstimateOut(
            job_id=job_id,
            estimated_start=None,
            estimate_is_bound=False,
            message=f"no start can be projected: {job.reason}: {job.message}",
        )
    return JobEstimateOut(
        job_id=job_id,
        estimated_start=datetime.fromtimestamp(estimate.start, UTC),
        estimate_is_bound=estimate.bound,
        message=estimate.describe(),
    )
