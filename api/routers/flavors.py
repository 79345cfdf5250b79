"""``/v1/flavors``: GPU types, the node labels that select them and per-GPU CPU/memory defaults."""

from __future__ import annotations

from fastapi import APIRouter

from api.convert import flavor_out
from api.deps import AdminDep, PrincipalDep, SessionDep
from api.params import ObjectPath
from api.schemas import FlavorCreate, FlavorOut, FlavorPatch
from quotas.quantity import cpu_to_milli, memory_to_bytes
from store import audit, controls, tenants

router = APIRouter(prefix="/v1/flavors", tags=["flavors"])


@router.post("", status_code=201)
def create_flavor(body: FlavorCreate, session: SessionDep, admin: AdminDep) -> FlavorOut:
    flavor = tenants.create_flavor(
        session,
        body.name,
        body.node_labels,
        cpu_to_milli(body.cpu_per_gpu),
        memory_to_bytes(body.memory_per_gpu),
    )
    audit.record(session, admin.user, "flavor.create", body.name, **body.model_dump())
    session.flush()
    return flavor_out(flavor)


@router.get("")
def list_flavors(session: SessionDep, _: PrincipalDep) -> list[FlavorOut]:
    return [flavor_out(f) for f in tenants.list_flavors(session)]


@router.get("/{name}")
def get_flavor(name: ObjectPath, session: SessionDep, _: PrincipalDep) -> FlavorOut:
    return flavor_out(tenants.get_flavor(session, name))


@router.patch("/{name}")
def patch_flavor(
    name: ObjectPath, body: FlavorPatch, session: SessionDep, admin: AdminDep
) -> FlavorOut:
    """Set the flavor's stop policy: ``open``, ``hold`` (nothing new is admitted on it) or
    ``hold_and_drain`` (its running jobs are also stopped and requeued)."""
    flavor = controls.set_stop_policy(session, "flavor", name, body.stop_policy)
    audit.record(session, admin.user, "flavor.update", name, stop_policy=body.stop_policy)
    return flavor_out(tenants.get_flavor(session, flavor.name))
