"""``/v1/tenants``: tenants, their quotas, members and current usage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm.exc import StaleDataError

from api.convert import format_amount, quota_in, quota_out, tenant_out, user_limits_in
from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    AdminDep,
    ForgetPrincipals,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    require_tenant_role,
    visible_tenants,
)
from api.params import TenantPath, UserPath
from api.problems import ApiProblem
from api.schemas import (
    MemberCreate,
    MemberOut,
    Quota,
    QuotaOut,
    TenantCreate,
    TenantOut,
    TenantPatch,
    UsageOut,
)
from scheduler.metrics import METRICS, JobOutcome
from store import audit, controls, jobs, lifecycle, tenants, users
from store.tenants import TENANT

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


@router.post("", status_code=201)
def create_tenant(
    body: TenantCreate, session: SessionDep, admin: AdminDep, settings: SettingsDep
) -> TenantOut:
    tenant = tenants.create_tenant(
        session,
        body.name,
        body.kind,
        body.cohort,
        body.weight,
        namespace=f"{settings.tenant_namespace_prefix}{body.name}",
    )
    quota = quota_in(body.quota) if body.quota is not None else {}
    tenants.set_quota(session, TENANT, body.name, quota)
    tenant.stop_policy = body.stop_policy
    if body.user_limits is not None:
        controls.set_tenant_defaults(tenant, user_limits_in(body.user_limits))
    audit.record(session, admin.user, "tenant.create", body.name, **body.model_dump())
    session.flush()
    return tenant_out(tenant, quota)


@router.get("")
def list_tenants(session: SessionDep, principal: PrincipalDep) -> list[TenantOut]:
    return [tenant_out(t) for t in tenants.list_tenants(session, visible_tenants(principal))]


@router.get("/{name}")
def get_tenant(name: TenantPath, session: SessionDep, principal: PrincipalDep) -> TenantOut:
    require_tenant_role(principal, name, READ_ROLES)
    tenant = tenants.get_tenant(session, name)
    return tenant_out(tenant, tenants.get_quota(session, TENANT, name))


@router.patch("/{name}")
def patch_tenant(
    name: TenantPath, body: TenantPatch, session: SessionDep, admin: AdminDep
) -> TenantOut:
    fields = body.model_fields_set
    tenant = tenants.update_tenant(
        session,
        name,
        kind=body.kind,
        cohort=body.cohort,
        clear_cohort="cohort" in fields and body.cohort is None,
        weight=body.weight,
    )
    if body.stop_policy is not None:
        controls.set_stop_policy(session, "tenant", name, body.stop_policy)
    if body.user_limits is not None:
        controls.set_tenant_defaults(tenant, user_limits_in(body.user_limits))
    audit.record(session, admin.user, "tenant.update", name, **body.model_dump(exclude_unset=True))
    return tenant_out(tenant, tenants.get_quota(session, TENANT, name))


@router.delete("/{name}", status_code=204, dependencies=[ForgetPrincipals])
def delete_tenant(
    name: TenantPath,
    session: SessionDep,
    admin: AdminDep,
    force: Annotated[bool, Query()] = False,
) -> Response:
    """Delete a tenant with its quota, members, jobs and usage. A tenant with unfinished jobs
    is a 409 unless ``force=true``, which cancels them first (the scheduler removes their
    pods)."""
    try:
        cancelled = lifecycle.delete_tenant(session, name, force=force, by=admin.user)
        session.flush()
    except StaleDataError as error:  # the scheduler changed one of its jobs meanwhile
        raise ApiProblem(
            409, f"a job of tenant {name!r} changed concurrently; retry the delete"
        ) from error
    detail: dict[str, object] = {"force": True, "cancelled": len(cancelled)} if force else {}
    audit.record(session, admin.user, "tenant.delete", name, **detail)
    for job in cancelled:
        METRICS.job_finished(job.tenant, job.flavor, JobOutcome.CANCELLED, 0.0)
    return Response(status_code=204)


@router.get("/{name}/quota")
def get_quota(name: TenantPath, session: SessionDep, principal: PrincipalDep) -> QuotaOut:
    require_tenant_role(principal, name, READ_ROLES)
    tenants.get_tenant(session, name)
    return quota_out(tenants.get_quota(session, TENANT, name))


@router.put("/{name}/quota")
def set_quota(name: TenantPath, body: Quota, session: SessionDep, admin: AdminDep) -> QuotaOut:
    tenants.get_tenant(session, name)
    quota = quota_in(body)
    tenants.set_quota(session, TENANT, name, quota)
    audit.record(session, admin.user, "tenant.quota.set", name, quota=body.model_dump())
    return quota_out(quota)


@router.get("/{name}/usage")
def get_usage(name: TenantPath, session: SessionDep, principal: PrincipalDep) -> UsageOut:
    """Quota against what the tenant's admitted and running jobs hold, per flavor and resource."""
    require_tenant_role(principal, name, READ_ROLES)
    tenants.get_tenant(session, name)
    quota = tenants.get_quota(session, TENANT, name)
    used = jobs.usage_by_tenant(session, name)
    flavors: dict[str, dict[str, dict[str, int | str | None]]] = {}
    for flavor in sorted(set(quota) | set(used)):
        resources: dict[str, dict[str, int | str | None]] = {}
        for resource in ("gpu", "cpu", "memory"):
            limits = quota.get(flavor, {}).get(resource)
            resources[resource] = {
                "nominal": format_amount(resource, limits.nominal if limits else None),
                "borrowing_limit": format_amount(
                    resource, limits.borrowing_limit if limits else None
                ),
                "lending_limit": format_amount(resource, limits.lending_limit if limits else None),
                "used": format_amount(resource, used.get(flavor, {}).get(resource, 0)),
            }
        resources["jobs"] = {"active": used.get(flavor, {}).get("jobs", 0)}
        flavors[flavor] = resources
    return UsageOut(tenant=name, flavors=flavors)


@router.post("/{name}/members", status_code=201, dependencies=[ForgetPrincipals])
def add_member(
    name: TenantPath, body: MemberCreate, session: SessionDep, principal: PrincipalDep
) -> MemberOut:
    require_tenant_role(principal, name, MANAGE_ROLES)
    membership = users.set_membership(session, name, body.user, body.role)
    audit.record(session, principal.user, "member.set", f"{name}/{body.user}", role=body.role)
    session.flush()
    return MemberOut.model_validate(membership)


@router.get("/{name}/members")
def list_members(name: TenantPath, session: SessionDep, principal: PrincipalDep) -> list[MemberOut]:
    require_tenant_role(principal, name, READ_ROLES)
    tenants.get_tenant(session, name)
    return [MemberOut.model_validate(m) for m in users.list_members(session, name)]


@router.delete("/{name}/members/{user}", status_code=204, dependencies=[ForgetPrincipals])
def remove_member(
    name: TenantPath, user: UserPath, session: SessionDep, principal: PrincipalDep
) -> Response:
    require_tenant_role(principal, name, MANAGE_ROLES)
    users.remove_membership(session, name, user)
    audit.record(session, principal.user, "member.remove", f"{name}/{user}")
    return Response(status_code=204)
