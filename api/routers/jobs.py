"""``/v1/jobs``: submit, list, inspect, cancel and follow training jobs."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from api.convert import JOB_LIST_COLUMNS, job_out, job_page_json
from api.deps import (
    MANAGE_ROLES,
    SUBMIT_ROLES,
    PrincipalDep,
    SessionDep,
    SubmissionWriterDep,
    in_read_session,
    require_tenant_role,
    visible_tenants,
)
from api.params import CursorQuery, JobIdPath, JobIdQuery, TenantQuery, UserQuery
from api.problems import ApiProblem
from api.schemas import JobCreate, JobEventOut, JobOut, JobPageOut
from k8s.client import ClusterClient
from k8s.errors import ClusterError, ClusterNotFound
from quotas.money import format_credits
from quotas.quantity import cpu_to_milli, memory_to_bytes
from scheduler.metrics import METRICS, JobOutcome
from store import jobs, ledger, tenants
from store.common import as_utc, new_job_id
from store.jobstates import JobStatus
from store.models import Job
from store.submissions import SubmissionWriter
from store.users import Principal

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
]


@router.post("", status_code=201, response_model=JobOut)
async def submit_job(
    body: JobCreate,
    principal: PrincipalDep,
    writer: SubmissionWriterDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Queue a job. Answered once the job is stored: 201 with the job, or 200 with the job
    first created for a replayed Idempotency-Key."""
    # The write goes through the process's group-commit writer (store.submissions): the
    # route never blocks the event loop, and concurrent submissions share one transaction.
    submitted = await asyncio.wrap_future(
        start_submission(body, principal, writer, idempotency_key)
    )
    headers = {"Location": f"/v1/jobs/{submitted.job.id}"}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:
        count_submission(body)
    status = 200 if submitted.replayed else 201
    return json_response(job_out(submitted.job), status_code=status, headers=headers)


def start_submission(
    body: JobCreate,
    principal: Principal,
    writer: SubmissionWriter,
    idempotency_key: str | None = None,
) -> Future[jobs.Submitted]:
    """Check the caller may submit to the tenant and hand the job to the writer (the route
    awaits the future; the portal, in a worker thread, waits for it)."""
    require_tenant_role(principal, body.tenant, SUBMIT_ROLES)
    return writer.submit(
        _job_request(body),
        user=principal.user,
        job_id=new_job_id(),
        idempotency_key=idempotency_key,
    )


def count_submission(body: JobCreate) -> None:
    for _ in range(body.array.count if body.array else 1):
        METRICS.job_submitted(body.tenant, body.flavor)


def _job_request(body: JobCreate) -> jobs.JobRequest:
    return jobs.JobRequest(
        tenant=body.tenant,
        name=body.name,
        image=body.image,
        flavor=body.flavor,
        gpus=body.gpus,
        workers=body.workers,
        command=body.command,
        args=body.args,
        env=body.env,
        cpu_milli=cpu_to_milli(body.cpu) if body.cpu else None,
        memory_bytes=memory_to_bytes(body.memory) if body.memory else None,
        priority=body.priority,
        max_runtime_seconds=body.max_runtime_seconds,
        annotations=body.annotations,
        checkpoint_interval_seconds=body.checkpoint_interval_seconds,
        depends_on=[d.model_dump() for d in body.depends_on],
        array_count=body.array.count if body.array else None,
        array_parallelism=body.array.parallelism if body.array else None,
    )


def json_response(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The model as JSON, serialised once: a route that returns its response model instead has
    FastAPI validate it a second time (in a worker thread, for a sync route)."""
    return Response(
        model.model_dump_json(),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


@router.get("", response_model=JobPageOut)
async def list_jobs(
    request: Request,
    principal: PrincipalDep,
    tenant: TenantQuery = None,
    status: Annotated[list[JobStatus] | None, Query()] = None,
    user: UserQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: CursorQuery = None,
    array_id: JobIdQuery = None,
) -> Response:
    # One worker thread reads and serialises the page (see api.deps.in_read_session), straight
    # from the rows to JSON: the same bytes as JobPageOut's (api.convert.job_page_json).
    def page_json(session: Session) -> Response:
        page = job_rows(session, principal, tenant, status, user, limit, cursor, array_id)
        return Response(job_page_json(page), media_type="application/json")

    return await in_read_session(request, page_json)


def job_rows(
    session: Session,
    principal: Principal,
    tenant: str | None = None,
    status: list[JobStatus] | None = None,
    user: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    array_id: str | None = None,
) -> jobs.JobPage:
    """A page of the jobs the caller may see, as rows of :data:`JOB_LIST_COLUMNS`: 404 for a
    tenant the caller has no role in."""
    scope = visible_tenants(principal)
    if tenant is not None:
        if scope is not None and tenant not in scope:
            raise ApiProblem(404, f"tenant {tenant!r} not found")
        scope = [tenant]
    return jobs.list_jobs(
        session,
        columns=JOB_LIST_COLUMNS,
        tenants=scope,
        status=[s.value for s in status] if status else None,
        user=user,
        limit=limit,
        cursor=cursor,
        array_id=array_id,
    )


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: JobIdPath, request: Request, principal: PrincipalDep) -> Response:
    return await in_read_session(
        request, lambda session: json_response(job_detail(job_id, session, principal))
    )


def job_detail(job_id: str, session: Session, principal: Principal) -> JobOut:
    """The job with its cost so far and its most (``GET /v1/jobs/{id}``; the portal's job
    page): 404 for a job of a tenant the caller has no role in."""
    job, cost = ledger.job_with_cost(session, job_id, tenants=visible_tenants(principal))
    out = job_out(job)
    out.cost = format_credits(cost)
    most = ledger.max_cost(session, job, time.time())
    out.max_cost = None if most is None else format_credits(most)
    return out


@router.post("/{job_id}/cancel")
def cancel_job(job_id: JobIdPath, session: SessionDep, principal: PrincipalDep) -> JobOut:
    job = jobs.get(session, job_id, tenants=visible_tenants(principal))
    require_owner_or_manager(principal, job.tenant, job.user)
    jobs.cancel(session, job, by=principal.user)
    try:
        session.flush()
    except StaleDataError as error:
        raise ApiProblem(409, f"job {job_id} changed concurrently; retry the cancel") from error
    METRICS.job_finished(job.tenant, job.flavor, JobOutcome.CANCELLED, run_seconds(job))
    return job_out(job)


def run_seconds(job: Job) -> float:
    if job.started_at is None or job.finished_at is None:
        return 0.0
    return max(0.0, (as_utc(job.finished_at) - as_utc(job.started_at)).total_seconds())


def require_owner_or_manager(principal: Principal, tenant: str, owner: str) -> None:
    """Owners (with a submitting role) act on their own jobs, tenant admins on any of the
    tenant's."""
    if principal.user == owner:
        require_tenant_role(principal, tenant, SUBMIT_ROLES)
    else:
        require_tenant_role(principal, tenant, MANAGE_ROLES)


@router.get("/{job_id}/events")
def job_events(
    job_id: JobIdPath, session: SessionDep, principal: PrincipalDep
) -> list[JobEventOut]:
    jobs.get(session, job_id, tenants=visible_tenants(principal))
    return [JobEventOut.model_validate(e) for e in jobs.events(session, job_id)]


@router.get("/{job_id}/logs", response_class=StreamingResponse)
def job_logs(
    job_id: JobIdPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    worker: Annotated[int, Query(ge=0, le=511)] = 0,
    follow: bool = False,
    tail_lines: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> StreamingResponse:
    """The worker's log as text; with ``follow=true`` streamed until the pod ends."""
    lines = worker_log_lines(request, session, principal, job_id, worker, follow, tail_lines)

    def body() -> Iterator[bytes]:
        for line in lines:
            yield (line + "\n").encode()

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


def worker_log_lines(
    request: Request,
    session: Session,
    principal: Principal,
    job_id: str,
    worker: int,
    follow: bool,
    tail_lines: int | None,
) -> Iterator[str]:
    """The lines of a worker's log (the JSON route streams them, the portal shows a tail):
    404 for a job the caller may not see, 409 before it started, 503 without a cluster."""
    job = jobs.get(session, job_id, tenants=visible_tenants(principal))
    if worker >= job.workers:
        raise ApiProblem(
            422,
            f"job {job_id} has {job.workers} workers (0..{job.workers - 1})",
            errors=[{"field": "query.worker", "message": "no such worker"}],
        )
    if job.placement is None and job.status == JobStatus.QUEUED.value:
        raise ApiProblem(409, f"job {job_id} has not started yet: {job.message}")
    client: ClusterClient | None = request.app.state.cluster_client
    if client is None:
        raise ApiProblem(
            503,
            "this API process has no cluster connection: run it in the cluster (service "
            "account) or set YUSHAN_KUBECONFIG",
        )
    namespace = tenants.get_tenant(session, job.tenant).namespace
    lines = client.read_logs(namespace, job_id, worker, follow=follow, tail_lines=tail_lines)
    try:
        first = next(lines, None)
    except ClusterNotFound as error:
        raise ApiProblem(404, f"no pod for worker {worker} of job {job_id}") from error
    except ClusterError as error:
        raise ApiProblem(503, f"cannot read logs from the cluster: {error}") from error
    if first is None:
        return iter(())
    return itertools.chain((first,), lines)
