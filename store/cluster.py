"""The cluster inventory (nodes) as last reported by the scheduler, and decayed usage rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store.common import utcnow
from store.models import Node, Usage


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
