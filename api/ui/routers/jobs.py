"""``/ui/jobs``: a researcher's jobs, one job's page (spec, events, why it waits, logs,
cancel) and the submit form. Every read and write is the JSON API's route function, called
with the signed-in user's principal."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.convert import job_out
from api.deps import SUBMIT_ROLES, SessionDep, SubmissionWriterDep
from api.params import JobIdPath
from api.problems import ApiProblem, friendly_message, store_status
from api.routers import flavors as flavor_routes
from api.routers import jobs as job_routes
from api.routers import tenants as tenant_routes
from api.schemas import JobCreate
from api.ui.render import FINAL_STATUSES, is_htmx, page, redirect
from api.ui.routing import PortalRoute
from api.ui.session import CheckedFormDep, PortalUserDep
from store.errors import StoreError
from store.jobstates import JobStatus

router = APIRouter(prefix="/ui/jobs", route_class=PortalRoute, include_in_schema=False)

PAGE_SIZE = 50
HTMX_STOP_POLLING = 286
LOG_TAIL_LINES = 200
DNS_LABEL_OR_EMPTY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"
TenantFilter = Annotated[str, Query(max_length=56, pattern=DNS_LABEL_OR_EMPTY)]
StatusFilter = Annotated[str, Query(pattern="^(|" + "|".join(JobStatus) + ")$")]
CursorFilter = Annotated[str, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]*$")]
FORM_FIELDS = ("tenant", "name", "image", "flavor", "gpus", "workers", "command", "priority")


@router.get("")
def job_list(
    request: Request,
    session: SessionDep,
    user: PortalUserDep,
    tenant: TenantFilter = "",
    status: StatusFilter = "",
    cursor: CursorFilter = "",
    mine: bool = False,
) -> HTMLResponse:
    """The jobs of the caller's tenants (``mine``: only their own), newest first."""
    page_of_jobs = job_routes.job_rows(
        session,
        user.principal,
        tenant=tenant or None,
        status=[JobStatus(status)] if status else None,
        user=user.principal.user if mine else None,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    context: dict[str, Any] = {
        "title": "Jobs",
        "jobs": [job_out(row) for row in page_of_jobs.items],
        "next_cursor": page_of_jobs.next_cursor,
        "tenant": tenant,
        "status": status,
        "tenants": [t.name for t in tenant_routes.list_tenants(session, user.principal)],
        "filtered": bool(tenant or status or cursor or mine),
        "cursor": cursor,
        "mine": mine,
    }
    if is_htmx(request):
        return page(request, "jobs_table.html", **context)
    return page(request, "jobs.html", **context)


def _submit_tenants(session: SessionDep, user: PortalUserDep) -> list[str]:
    every = [t.name for t in tenant_routes.list_tenants(session, user.principal)]
    if user.principal.is_admin:
        return every
    return [t for t in every if user.principal.roles.get(t) in SUBMIT_ROLES]


def _choices(session: SessionDep, user: PortalUserDep) -> dict[str, Any]:
    """What the submit form offers (read before a submission, which may roll back)."""
    return {
        "tenants": _submit_tenants(session, user),
        "flavors": [f.name for f in flavor_routes.list_flavors(session, user.principal)],
        "priorities": ("low", "normal", "high"),
    }


def _submit_form(
    request: Request,
    choices: dict[str, Any],
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "submit.html",
        status,
        title="Submit a job",
        values=values,
        errors=errors,
        **choices,
    )


@router.get("/new")
def new_job(request: Request, session: SessionDep, user: PortalUserDep) -> HTMLResponse:
    defaults = {"gpus": "1", "workers": "1", "priority": "normal", "image": "", "name": ""}
    tenants = _submit_tenants(session, user)
    defaults["tenant"] = tenants[0] if tenants else ""
    return _submit_form(request, _choices(session, user), defaults, {})


def _body(form: dict[str, str]) -> dict[str, Any]:
    """The JSON body the form stands for (the API's schema validates it)."""
    body: dict[str, Any] = {key: form.get(key, "") for key in ("tenant", "name", "image", "flavor")}
    body["gpus"] = form.get("gpus", "")
    body["workers"] = form.get("workers", "") or 1
    body["priority"] = form.get("priority", "") or "normal"
    if form.get("max_runtime_seconds", "").strip():
        body["max_runtime_seconds"] = form["max_runtime_seconds"].strip()
    body["command"] = shlex.split(form.get("command", ""))
    return body


def _field(location: str) -> str:
    """``body.gpus`` / ``gpus`` / ``command.0`` -> the form control's name."""
    parts = location.removeprefix("body.").split(".")
    return parts[0] if parts and parts[0] else "form"


def _submission_errors(error: Exception) -> tuple[int, dict[str, str]]:
    if isinstance(error, ValidationError):
        found: dict[str, str] = {}
        for item in error.errors():
            location = ".".join(str(p) for p in item.get("loc", ()))
            found.setdefault(_field(location), friendly_message(item))
        return 422, found
    if isinstance(error, ApiProblem):
        fields = {_field(e["field"]): e["message"] for e in error.errors}
        return error.status, fields or {"form": error.detail}
    if isinstance(error, StoreError):
        return store_status(error), {_field(error.field or ""): error.message}
    raise error


@router.post("", response_model=None)
def submit(
    request: Request,
    session: SessionDep,
    user: PortalUserDep,
    form: CheckedFormDep,
    writer: SubmissionWriterDep,
) -> Response:
    values = {key: form.get(key, "") for key in (*FORM_FIELDS, "max_runtime_seconds")}
    choices = _choices(session, user)
    try:
        body = JobCreate.model_validate(_body(form))
        # The API's group-commit writer stores it; this worker thread waits for the result.
        submitted = job_routes.start_submission(body, user.principal, writer).result()
    except ValueError as error:  # shlex: an unclosed quote in the command
        if isinstance(error, ValidationError):
            status, errors = _submission_errors(error)
        else:
            status, errors = 422, {"command": f"cannot split the command: {error}"}
    except (ApiProblem, StoreError) as error:
        status, errors = _submission_errors(error)
    else:
        job_routes.count_submission(body)
        return redirect(f"/ui/jobs/{submitted.job.id}")
    session.rollback()  # nothing of a refused submission is kept
    return _submit_form(request, choices, values, errors, status)


@router.get("/{job_id}")
def job_page(
    request: Request,
    job_id: JobIdPath,
    session: SessionDep,
    user: PortalUserDep,
    worker: Annotated[int, Query(ge=0, le=511)] = 0,
    follow: bool = False,
) -> HTMLResponse:
    job = job_routes.job_detail(job_id, session, user.principal)
    events = job_routes.job_events(job_id, session, user.principal)
    context: dict[str, Any] = {"title": f"Job {job.name}", "job": job, "events": events}
    if is_htmx(request):
        # The status, and the events swapped in out of band; htmx stops polling on 286: a
        # finished job changes no more.
        final = job.status in FINAL_STATUSES
        return page(request, "job_live.html", HTMX_STOP_POLLING if final else 200, **context)
    log = _log_tail(request, session, user, job_id, worker)
    return page(
        request,
        "job.html",
        **context,
        log=log,
        worker=worker,
        follow=follow,
        can_cancel=_may_cancel(user, job.tenant, job.user),
    )


def _may_cancel(user: PortalUserDep, tenant: str, owner: str) -> bool:
    try:
        job_routes.require_owner_or_manager(user.principal, tenant, owner)
    except ApiProblem:
        return False
    return True


def _log_tail(
    request: Request, session: SessionDep, user: PortalUserDep, job_id: str, worker: int
) -> dict[str, str]:
    """``{"text": ...}`` or ``{"note": why there is none}`` (not started, no cluster)."""
    try:
        lines = job_routes.worker_log_lines(
            request, session, user.principal, job_id, worker, False, LOG_TAIL_LINES
        )
        return {"text": "\n".join(lines)}
    except ApiProblem as error:
        if error.status == 404 and "no pod" not in error.detail:
            raise
        return {"note": error.detail}


@router.get("/{job_id}/logs")
def job_logs(
    request: Request,
    job_id: JobIdPath,
    session: SessionDep,
    user: PortalUserDep,
    worker: Annotated[int, Query(ge=0, le=511)] = 0,
) -> HTMLResponse:
    """The log tail alone (the job page refreshes it while following)."""
    log = _log_tail(request, session, user, job_id, worker)
    return page(request, "job_log.html", log=log, job_id=job_id, worker=worker, follow=True)


@router.post("/{job_id}/cancel")
def cancel(
    job_id: JobIdPath, session: SessionDep, user: PortalUserDep, _: CheckedFormDep
) -> Response:
    job_routes.cancel_job(job_id, session, user.principal)
    return redirect(f"/ui/jobs/{job_id}")
