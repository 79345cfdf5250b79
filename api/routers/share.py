"""``/v1/share``: the fair-share tree (cohort -> tenant -> user), like Slurm's ``sshare``.

Computed by :func:`scheduler.fairshare.share_tree` from the stored quotas, the admitted and
running jobs and the decayed usage the scheduler keeps. Every signed-in user sees the cohorts
and tenants (numbers only); user rows are shown for the tenants the caller belongs to (all of
them to platform admins).
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import PrincipalDep, SessionDep, visible_tenants
from scheduler.fairshare import share_tree
from scheduler.snapshots import build_snapshot, stored_nodes

router = APIRouter(prefix="/v1/share", tags=["queue"])


class ShareRowOut(BaseModel):
    kind: Literal["cohort", "tenant", "user"]
    name: str
    parent: str | None
    depth: int
    weight: float | None
    nominal_gpus: int | None
    gpus: int
    borrowed_gpus: int | None
    share: float
    usage_gpu_seconds: float
    usage_ratio: float | None


@router.get("")
def get_share(session: SessionDep, principal: PrincipalDep) -> list[ShareRowOut]:
    snapshot = build_snapshot(session, stored_nodes(session), time.time(), queued=())
    visible = visible_tenants(principal)
    return [
        ShareRowOut.model_validate(row, from_attributes=True)
        for row in share_tree(snapshot)
        if row.kind != "user" or visible is None or row.parent in visible
    ]
