"""The cluster inventory (nodes) as last reported by the scheduler, and decayed usage rows.

The scheduler loop records the inventory (``replace_nodes``) whenever it changes; the API reads
it for ``/v1/cluster`` and for its submit-time and flavor-creation checks. Before the first
iteration the inventory is empty: the API then cannot tell what fits and refuses nothing on
those grounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store.common import utcnow
from store.errors import InvalidRequest
from store.models import Flavor, Node, Usage

FLAVOR_LABEL = "yushan.io/flavor"
"""A node label naming its flavor outright, for flavors that select nodes by no other label."""
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
"""The GPU model, as NVIDIA's GPU feature discovery labels nodes."""


def selects(flavor: str, selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a flavor (its name and node-label selector) selects a node with ``labels``: the
    node carries every label of the selector, or, for a flavor with no selector, names the
    flavor in ``yushan.io/flavor``. The scheduler loop assigns nodes to flavors by this rule."""
    if selector:
        return all(labels.get(key) == value for key, value in selector.items())
    return labels.get(FLAVOR_LABEL) == flavor


@dataclass(frozen=True, slots=True)
class NodeRecord:
    name: str
    flavor: str | None
    labels: dict[str, str]
    gpu_capacity: int
    gpu_allocatable: int
    gpu_allocated: int
    cpu_milli_allocatable: int
    memory_bytes_allocatable: int
    ready: bool
    schedulable: bool


def replace_nodes(session: Session, records: Iterable[NodeRecord]) -> None:
    """Make the stored inventory exactly ``records`` (nodes that went away are removed)."""
    now = utcnow()
    wanted = {record.name: record for record in records}
    existing = {node.name: node for node in session.scalars(select(Node)).all()}
    gone = set(existing) - set(wanted)
    if gone:
        session.execute(delete(Node).where(Node.name.in_(gone)))
    for name, record in wanted.items():
        node = existing.get(name)
        if node is None:
            node = Node(name=name)
            session.add(node)
        node.flavor = record.flavor
        node.labels = record.labels
        node.gpu_capacity = record.gpu_capacity
        node.gpu_allocatable = record.gpu_allocatable
        node.gpu_allocated = record.gpu_allocated
        node.cpu_milli_allocatable = record.cpu_milli_allocatable
        node.memory_bytes_allocatable = record.memory_bytes_allocatable
        node.ready = record.ready
        node.schedulable = record.schedulable
        node.updated_at = now


def list_nodes(session: Session) -> Sequence[Node]:
    return session.scalars(select(Node).order_by(Node.name)).all()


def nodes_selected_by(session: Session, name: str, selector: Mapping[str, str]) -> Sequence[Node]:
    """The known nodes a flavor selects by its labels (whatever flavor the last iteration
    assigned them: a flavor created since has none assigned yet)."""
    return [node for node in list_nodes(session) if selects(name, selector, node.labels)]


def require_selected_nodes(session: Session, name: str, selector: Mapping[str, str]) -> None:
    """Refuse a flavor whose labels select no known node (a typo in a label would otherwise
    leave its jobs waiting forever). With no inventory yet (the scheduler has not run),
    nothing is refused."""
    nodes = list_nodes(session)
    if not nodes or any(selects(name, selector, node.labels) for node in nodes):
        return
    wanted = (
        ", ".join(f"{key}={value}" for key, value in sorted(selector.items()))
        if selector
        else f"{FLAVOR_LABEL}={name}"
    )
    products = sorted({n.labels[GPU_PRODUCT_LABEL] for n in nodes if GPU_PRODUCT_LABEL in n.labels})
    seen = f"; GPU products present: {', '.join(products)}" if products else ""
    raise InvalidRequest(
        f"no node carries {wanted} ({len(nodes)} nodes known{seen}): check the labels with "
        "'yushan cluster', or pass allow_empty=true (CLI --allow-empty) if the flavor's nodes "
        "have not joined yet",
        field="body.node_labels",
    )


def nodes_of_flavor(session: Session, flavor: Flavor) -> Sequence[Node]:
    """The nodes of a flavor: those the scheduler assigned to it, else (a flavor created since
    the last iteration) those its labels select."""
    assigned = session.scalars(
        select(Node).where(Node.flavor == flavor.name).order_by(Node.name)
    ).all()
    return assigned or nodes_selected_by(session, flavor.name, flavor.node_labels)


def load_usage(session: Session) -> Sequence[Usage]:
    return session.scalars(select(Usage)).all()


def save_usage(session: Session, values: dict[tuple[str, str], float]) -> None:
    """Upsert decayed GPU-seconds keyed by (tenant, user); user ``""`` is the tenant total."""
    now = utcnow()
    existing = {(u.tenant, u.user): u for u in session.scalars(select(Usage)).all()}
    for key, value in values.items():
        row = existing.get(key)
        if row is None:
            session.add(Usage(tenant=key[0], user=key[1], gpu_seconds=value, updated_at=now))
        else:
            row.gpu_seconds = value
            row.updated_at = now


def largest(nodes: Iterable[Node], resource: str = "gpus") -> Node:
    """The node with the most of ``resource`` (``gpus``, ``cpu`` or ``memory``), ties broken
    by GPUs, then CPU, then memory."""

    def size(node: Node) -> tuple[int, int, int, int]:
        gpus, cpu, memory = (
            node.gpu_allocatable,
            node.cpu_milli_allocatable,
            node.memory_bytes_allocatable,
        )
        first = {"gpus": gpus, "cpu": cpu, "memory": memory}[resource]
        return first, gpus, cpu, memory

    return max(nodes, key=size)
