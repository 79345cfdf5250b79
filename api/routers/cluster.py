"""``/v1/cluster``: nodes and GPU capacity per flavor, as last seen by the scheduler; each
node with its labels and GPU product, so an admin can write a flavor's labels from it."""

from __future__ import annotations

from fastapi import APIRouter

from api.convert import node_out
from api.deps import PrincipalDep, SessionDep
from api.schemas import ClusterOut, FlavorCapacityOut
from store import cluster

router = APIRouter(prefix="/v1/cluster", tags=["cluster"])


@router.get("")
def get_cluster(session: SessionDep, _: PrincipalDep) -> ClusterOut:
    nodes = cluster.list_nodes(session)
    flavors: dict[str, FlavorCapacityOut] = {}
    for node in nodes:
        key = node.flavor or "(none)"
        entry = flavors.setdefault(
            key,
            FlavorCapacityOut(
                flavor=key,
                nodes=0,
                nodes_ready=0,
                gpu_capacity=0,
                gpu_allocatable=0,
                gpu_allocated=0,
            ),
        )
        entry.nodes += 1
        entry.nodes_ready += int(node.ready)
        entry.gpu_capacity += node.gpu_capacity
        entry.gpu_allocatable += node.gpu_allocatable
        entry.gpu_allocated += node.gpu_allocated
    return ClusterOut(
        flavors=sorted(flavors.values(), key=lambda f: f.flavor),
        nodes=[node_out(n) for n in nodes],
    )
