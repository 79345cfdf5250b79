"""``/v1/tenants/{name}/queue``: a tenant's queue in scheduling order with each job's ordering
factors, like Slurm's ``sprio``; ``/v1/queue`` shows the whole queue to platform admins."""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import (
    READ_ROLES,
    AdminDep,
    PolicyDep,
    PrincipalDep,
    SessionDep,
    require_tenant_role,
)
from api.params import TenantPath
from scheduler.cycle import explain_queue
from scheduler.policy import Policy
from scheduler.snapshots import build_snapshot, stored_nodes
from store import jobs, tenants

router = APIRouter(tags=["queue"])


class QueueEntryOut(BaseModel):
    position: int
    tenant_position: int
    job_id: str
    tenant: str
    user: str
    name: str
    gpus: int
    workers: int
    priority: str
    reason: str
    message: str
    factors: dict[str, float]


def _queue(session: SessionDep, policy: Policy, tenant: str | None) -> list[QueueEntryOut]:
    queued = {job.id: job for job in jobs.queued_jobs(session)}
    snapshot = build_snapshot(session, stored_nodes(session), time.time(), queued=queued.values())
    entries = explain_queue(snapshot, policy, tenant)
    out = []
    for entry in entries:
        job = queued[entry.job_id]
        out.append(
            QueueEntryOut(
                position=entry.position,
                tenant_position=entry.tenant_position,
                job_id=job.id,
                tenant=job.tenant,
                user=job.user,
                name=job.name,
                gpus=job.gpus,
                workers=job.workers,
                priority=job.priority,
                reason=job.reason,
                message=job.message,
                factors=dict(entry.factors),
            )
        )
    return out


@router.get("/v1/tenants/{name}/queue")
def tenant_queue(
    name: TenantPath, session: SessionDep, principal: PrincipalDep, policy: PolicyDep
) -> list[QueueEntryOut]:
    require_tenant_role(principal, name, READ_ROLES)
    tenants.get_tenant(session, name)
    return _queue(session, policy, name)


@router.get("/v1/queue")
def global_queue(session: SessionDep, _: AdminDep, policy: PolicyDep) -> list[QueueEntryOut]:
    return _queue(session, policy, None)
