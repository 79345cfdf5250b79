"""``/v1/tenants/{name}/limits``: per-user limits inside a tenant (Slurm's ``MaxTRESPerUser``,
``MaxJobsPerUser``, ``MaxSubmitJobsPerUser``).

The tenant's defaults are part of the tenant (``PATCH /v1/tenants/{name}`` with
``user_limits``, platform admins); a tenant admin sets and removes the overrides of one user
here. Every change is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.convert import user_limits_in, user_limits_out
from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    PrincipalDep,
    SessionDep,
    require_tenant_role,
)
from api.params import TenantPath, UserPath
from api.schemas import TenantLimitsOut, UserLimitsBody, UserLimitsOut
from store import audit, controls, tenants

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


@router.get("/{name}/limits")
def get_limits(name: TenantPath, session: SessionDep, principal: PrincipalDep) -> TenantLimitsOut:
    require_tenant_role(principal, name, READ_ROLES)
    tenant = tenants.get_tenant(session, name)
    return TenantLimitsOut(
        tenant=name,
        defaults=user_limits_out(controls.tenant_defaults(tenant)),
        users={
            user: user_limits_out(limits)
            for (_, user), limits in controls.overrides(session, name).items()
        },
    )


@router.put("/{name}/limits/{user}")
def set_user_limits(
    name: TenantPath,
    user: UserPath,
    body: UserLimitsBody,
    session: SessionDep,
    principal: PrincipalDep,
) -> UserLimitsOut:
    require_tenant_role(principal, name, MANAGE_ROLES)
    limits = user_limits_in(body)
    controls.set_user_limits(session, name, user, limits)
    audit.record(
        session, principal.user, "tenant.user_limits.set", f"{name}/{user}", **body.model_dump()
    )
    return user_limits_out(limits)


@router.delete("/{name}/limits/{user}", status_code=204)
def delete_user_limits(
    name: TenantPath, user: UserPath, session: SessionDep, principal: PrincipalDep
) -> Response:
    require_tenant_role(principal, name, MANAGE_ROLES)
    tenants.get_tenant(session, name)
    controls.delete_user_limits(session, name, user)
    audit.record(session, principal.user, "tenant.user_limits.delete", f"{name}/{user}")
    return Response(status_code=204)
