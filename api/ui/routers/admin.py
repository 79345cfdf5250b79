"""``/ui/admin/*``: the platform admin's pages: the cluster (nodes x GPUs coloured by tenant),
tenants and cohorts with their quotas (edit forms), the fair-share tree and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep, check_admin
from api.params import ObjectPath
from api.problems import ApiProblem, friendly_message
from api.routers import audit as audit_routes
from api.routers import cluster as cluster_routes
from api.routers import cohorts as cohort_routes
from api.routers import flavors as flavor_routes
from api.routers import share as share_routes
from api.routers import tenants as tenant_routes
from api.schemas import Quota, QuotaOut
from api.ui.charts import Holding, NodeFacts, gpu_grid, tenant_colours
from api.ui.render import page, redirect
from api.ui.routing import PortalRoute
from api.ui.session import CheckedFormDep, PortalUser, PortalUserDep
from store import jobs
from store.errors import StoreError

router = APIRouter(prefix="/ui/admin", route_class=PortalRoute, include_in_schema=False)

RESOURCES = ("gpu", "cpu", "memory")
LIMITS = ("nominal", "borrowing_limit", "lending_limit")
OwnerKind = Literal["tenant", "cohort"]


def admin_user(user: PortalUserDep) -> PortalUser:
    check_admin(user.principal)
    return user


AdminUserDep = Annotated[PortalUser, Depends(admin_user)]


@router.get("/cluster")
def cluster_page(request: Request, session: SessionDep, user: AdminUserDep) -> HTMLResponse:
    cluster = cluster_routes.get_cluster(session, user.principal)
    nodes = [
        NodeFacts(n.name, n.flavor, n.ready, n.schedulable, n.gpu_capacity) for n in cluster.nodes
    ]
    holdings = [Holding(*held) for held in jobs.placements(session)]
    rows = gpu_grid(nodes, holdings)
    colours = tenant_colours(cell for row in rows for cell in row.cells if cell)
    return page(
        request, "cluster.html", title="Cluster", cluster=cluster, rows=rows, colours=colours
    )


@router.get("/tenants")
def tenants_page(request: Request, session: SessionDep, user: AdminUserDep) -> HTMLResponse:
    principal = user.principal
    tenants = [
        tenant_routes.get_tenant(t.name, session, principal)
        for t in tenant_routes.list_tenants(session, principal)
    ]
    cohorts = [
        (cohort, cohort_routes.get_cohort_quota(cohort.name, session, principal))
        for cohort in cohort_routes.list_cohorts(session, principal)
    ]
    return page(
        request, "admin_tenants.html", title="Tenants & cohorts", tenants=tenants, cohorts=cohorts
    )


def _current_quota(session: SessionDep, user: PortalUser, kind: OwnerKind, name: str) -> QuotaOut:
    if kind == "tenant":
        return tenant_routes.get_quota(name, session, user.principal)
    cohort_routes.get_cohort(name, session, user.principal)
    return cohort_routes.get_cohort_quota(name, session, user.principal)


def _quota_values(quota: QuotaOut) -> dict[str, str]:
    return {
        f"{flavor}.{resource}.{limit}": str(getattr(limits, limit) or "")
        for flavor, resources in quota.flavors.items()
        for resource, limits in resources.items()
        for limit in LIMITS
    }


def _flavor_names(session: SessionDep, user: PortalUser) -> list[str]:
    return sorted(f.name for f in flavor_routes.list_flavors(session, user.principal))


def _quota_form(
    request: Request,
    flavors: list[str],
    kind: OwnerKind,
    name: str,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    flavors = flavors + sorted({key.split(".")[0] for key in values} - set(flavors))
    return page(
        request,
        "quota_form.html",
        status,
        title=f"Quota of {kind} {name}",
        kind=kind,
        name=name,
        flavors=flavors,
        resources=RESOURCES,
        limits=LIMITS,
        values=values,
        errors=errors,
    )


@router.get("/quota/{kind}/{name}")
def quota_page(
    request: Request, kind: OwnerKind, name: ObjectPath, session: SessionDep, user: AdminUserDep
) -> HTMLResponse:
    values = _quota_values(_current_quota(session, user, kind, name))
    return _quota_form(request, _flavor_names(session, user), kind, name, values, {})


def quota_body(form: dict[str, str], flavors: list[str]) -> dict[str, Any]:
    """The ``Quota`` body of the form: a flavor whose fields are all empty has no quota; a
    resource with an empty nominal is left out; an empty limit is unlimited."""
    body: dict[str, Any] = {}
    for flavor in flavors:
        entry: dict[str, Any] = {}
        for resource in RESOURCES:
            given = {
                limit: form.get(f"{flavor}.{resource}.{limit}", "").strip() for limit in LIMITS
            }
            if not any(given.values()):
                continue
            entry[resource] = {limit: value or None for limit, value in given.items()}
        if entry:
            body[flavor] = entry
    return {"flavors": body}


@router.post("/quota/{kind}/{name}", response_model=None)
def set_quota(
    request: Request,
    kind: OwnerKind,
    name: ObjectPath,
    session: SessionDep,
    user: AdminUserDep,
    form: CheckedFormDep,
) -> Response:
    _current_quota(session, user, kind, name)  # 404 for an unknown tenant or cohort
    known_flavors = _flavor_names(session, user)
    values = {key: value for key, value in form.items() if key.count(".") == 2}
    flavors = sorted({key.split(".")[0] for key in values})
    errors: dict[str, str] = {}
    try:
        body = Quota.model_validate(quota_body(form, flavors))
        if kind == "tenant":
            tenant_routes.set_quota(name, body, session, user.principal)
        else:
            cohort_routes.set_cohort_quota(name, body, session, user.principal)
    except ValidationError as error:
        for item in error.errors():
            location = [str(p) for p in item.get("loc", ()) if p != "flavors"]
            errors.setdefault(".".join(location[:3]), friendly_message(item))
    except ApiProblem as error:
        errors["form"] = error.detail
    except StoreError as error:
        errors[(error.field or "form").removeprefix("body.flavors.")] = error.message
    else:
        return redirect("/ui/admin/tenants")
    session.rollback()
    return _quota_form(request, known_flavors, kind, name, values, errors, 422)


@router.get("/share")
def share_page(request: Request, session: SessionDep, user: AdminUserDep) -> HTMLResponse:
    rows = share_routes.get_share(session, user.principal)
    return page(request, "share.html", title="Fair share", rows=rows)


OptionalActor = Annotated[str, Query(max_length=63, pattern=r"^[A-Za-z0-9._-]*$")]
OptionalAction = Annotated[str, Query(max_length=64, pattern=r"^([a-z]+(\.[a-z]+)*)?$")]
OptionalTime = Annotated[str, Query(max_length=40, pattern=r"^[0-9T:.+Z -]*$")]


def _time(field: str, value: str, errors: dict[str, str]) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        errors[field] = "must be a date and time (ISO 8601, e.g. 2026-12-01T08:00)"
        return None


@router.get("/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    user: AdminUserDep,
    actor: OptionalActor = "",
    action: OptionalAction = "",
    since: OptionalTime = "",
    until: OptionalTime = "",
    cursor: Annotated[str, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]*$")] = "",
) -> HTMLResponse:
    errors: dict[str, str] = {}
    start, end = _time("since", since, errors), _time("until", until, errors)
    entries = audit_routes.list_audit(
        session,
        user.principal,
        limit=100,
        cursor=cursor or None,
        actor=actor or None,
        action=action or None,
        since=start,
        until=end,
    )
    filters = {"actor": actor, "action": action, "since": since, "until": until}
    return page(
        request,
        "audit.html",
        422 if errors else 200,
        title="Audit log",
        entries=entries.items,
        next_cursor=entries.next_cursor,
        filters=filters,
        errors=errors,
    )
