"""``/v1/flavors``: GPU types, the node labels that select them and per-GPU CPU/memory defaults.

A flavor whose labels select no node the scheduler has reported is refused (422) unless
``allow_empty``; a flavor named by a quota or by an unfinished job cannot be deleted (409).
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.convert import flavor_out
from api.deps import AdminDep, PrincipalDep, SessionDep
from api.params import ObjectPath
from api.schemas import FlavorCreate, FlavorOut, FlavorPatch
from quotas.quantity import cpu_to_milli, memory_to_bytes
from store import audit, cluster, controls, tenants

router = APIRouter(prefix="/v1/flavors", tags=["flavors"])


@router.post("", status_code=201)
def create_flavor(body: FlavorCreate, session: SessionDep, admin: AdminDep) -> FlavorOut:
    if not body.allow_empty:
        cluster.require_selected_nodes(session, body.name, body.node_labels)
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
    """Change labels or per-GPU defaults (which apply to jobs submitted from now on), or the
    stop policy: ``open``, ``hold`` (nothing new is admitted on it) or ``hold_and_drain`` (its
    running jobs are also stopped and requeued)."""
    tenants.get_flavor(session, name)
    if body.node_labels is not None and not body.allow_empty:
        cluster.require_selected_nodes(session, name, body.node_labels)
    changes = body.model_dump(exclude_unset=True, exclude={"stop_policy"})
    if changes:
        tenants.update_flavor(
            session,
            name,
            node_labels=body.node_labels,
            cpu_milli_per_gpu=cpu_to_milli(body.cpu_per_gpu) if body.cpu_per_gpu else None,
            memory_bytes_per_gpu=(
                memory_to_bytes(body.memory_per_gpu) if body.memory_per_gpu else None
            ),
        )
    if body.stop_policy is not None:
        controls.set_stop_policy(session, "flavor", name, body.stop_policy)
    audit.record(session, admin.user, "flavor.update", name, **body.model_dump(exclude_unset=True))
    session.flush()
    return flavor_out(tenants.get_flavor(session, name))


@router.delete("/{name}", status_code=204)
def delete_flavor(name: ObjectPath, session: SessionDep, admin: AdminDep) -> Response:
    tenants.delete_flavor(session, name)
    audit.record(session, admin.user, "flavor.delete", name)
    return Response(status_code=204)
