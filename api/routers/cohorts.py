"""``/v1/cohorts``: groups of tenants that lend each other idle quota."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.convert import quota_in, quota_out
from api.deps import AdminDep, PrincipalDep, SessionDep
from api.params import ObjectPath
from api.schemas import CohortCreate, CohortOut, CohortPatch, Quota, QuotaOut
from store import audit, tenants
from store.tenants import COHORT

router = APIRouter(prefix="/v1/cohorts", tags=["cohorts"])


@router.post("", status_code=201)
def create_cohort(body: CohortCreate, session: SessionDep, admin: AdminDep) -> CohortOut:
    cohort = tenants.create_cohort(session, body.name, body.parent)
    cohort.weights_from_allocation = body.weights_from_allocation
    audit.record(session, admin.user, "cohort.create", body.name, **body.model_dump())
    session.flush()
    return CohortOut.model_validate(cohort)


@router.get("")
def list_cohorts(session: SessionDep, _: PrincipalDep) -> list[CohortOut]:
    return [CohortOut.model_validate(c) for c in tenants.list_cohorts(session)]


@router.get("/{name}")
def get_cohort(name: ObjectPath, session: SessionDep, _: PrincipalDep) -> CohortOut:
    return CohortOut.model_validate(tenants.get_cohort(session, name))


@router.patch("/{name}")
def patch_cohort(
    name: ObjectPath, body: CohortPatch, session: SessionDep, admin: AdminDep
) -> CohortOut:
    cohort = tenants.get_cohort(session, name)
    if "parent" in body.model_fields_set:
        cohort = tenants.set_cohort_parent(session, name, body.parent)
    if body.weights_from_allocation is not None:
        cohort.weights_from_allocation = body.weights_from_allocation
    audit.record(session, admin.user, "cohort.update", name, **body.model_dump(exclude_unset=True))
    session.flush()
    return CohortOut.model_validate(cohort)


@router.delete("/{name}", status_code=204)
def delete_cohort(name: ObjectPath, session: SessionDep, admin: AdminDep) -> Response:
    """Delete a cohort and its quota; one that still holds tenants or cohorts is a 409."""
    tenants.delete_cohort(session, name)
    audit.record(session, admin.user, "cohort.delete", name)
    return Response(status_code=204)


@router.get("/{name}/quota")
def get_cohort_quota(name: ObjectPath, session: SessionDep, _: PrincipalDep) -> QuotaOut:
    tenants.get_cohort(session, name)
    return quota_out(tenants.get_quota(session, COHORT, name))


@router.put("/{name}/quota")
def set_cohort_quota(
    name: ObjectPath, body: Quota, session: SessionDep, admin: AdminDep
) -> QuotaOut:
    tenants.get_cohort(session, name)
    quota = quota_in(body)
    tenants.set_quota(session, COHORT, name, quota)
    audit.record(session, admin.user, "cohort.quota.set", name, quota=body.model_dump())
    return quota_out(quota)
