"""Backfill around node-level reservations.

When a job cannot start for lack of capacity (the first such job of a flavor in queue order, or
a job past the starvation limit), the cycle projects, from the running jobs' time limits, the
earliest instant at which enough *nodes* have room for each of its workers, and reserves those
nodes from then on. A later job may still start now if it is placed elsewhere, or if it is
certain to end before the reservation (its ``max_runtime_seconds`` says so), or if it only uses
GPUs of a reserved node that the reserved job will not need. Running jobs without a time limit
are taken never to end, so a job without one never delays a reservation.

Counting nodes rather than GPUs is what lets wide gangs start: with GPUs counted per flavor, the
projected instant arrives with the free GPUs scattered over many nodes, small jobs take them,
and the gang waits again. The projection looks at GPUs only (CPU and memory follow them on GPU
nodes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scheduler.model import JobState


@dataclass(slots=True)
class Reservation:
    job_id: str
    flavor: str
    start_at: float
    spare: dict[str, int] = field(default_factory=dict)
    """Per reserved node, the GPUs that will be free at ``start_at`` beyond what the reserved job
    takes there; jobs that outlive the reservation may use only these."""

    def permits(self, job: JobState, placement: Iterable[str], now: float) -> bool:
        """Whether starting ``job`` on ``placement`` now cannot delay the reserved job."""
        if self.ends_in_time(job, now):
            return True
        used = _per_node(placement, job.demand.gpu)
        return all(gpus <= self.spare[name] for name, gpus in used.items() if name in self.spare)

    def ends_in_time(self, job: JobState, now: float) -> bool:
        limit = job.max_runtime_seconds
        return limit is not None and now + limit <= self.start_at

    def blocked_nodes(self, job: JobState) -> list[str]:
        """Reserved nodes where not even one worker of ``job`` may go."""
        return [name for name, spare in self.spare.items() if spare < job.demand.gpu]

    def commit(self, job: JobState, placement: Iterable[str], now: float) -> None:
        """Record that ``job`` started on ``placement`` under this reservation."""
        if self.ends_in_time(job, now):
            return
        for name, gpus in _per_node(placement, job.demand.gpu).items():
            if name in self.spare:
                self.spare[name] -= gpus


def _per_node(placement: Iterable[str], gpus_per_worker: int) -> dict[str, int]:
    used: dict[str, int] = {}
    for name in placement:
        used[name] = used.get(name, 0) + gpus_per_worker
    return used


def reserve(
    job: JobState,
    free_now: Mapping[str, int],
    releases: Sequence[tuple[float, str, int, str]],
    now: float,
) -> Reservation:
    """Reserve the nodes on which every worker of ``job`` can run soonest.

    ``free_now``: free GPUs of each open node of the job's flavor; ``releases``: (end, node,
    GPUs, job id) of each worker of the running jobs with a time limit, soonest first
    (:meth:`scheduler.state.SchedulingState.node_releases`); nodes not in ``free_now`` are
    ignored. A gang that can never fit gets a reservation at infinity on no node (it delays
    nobody).
    """
    per_worker = max(1, job.demand.gpu)
    workers = job.workers
    free = dict(free_now)
    slots = {name: gpus // per_worker for name, gpus in free.items()}
    total = sum(slots.values())
    start_at = now
    events = iter(releases)
    while total < workers:
        event = next(events, None)
        if event is None:
            break
        end, name, freed, _ = event
        if name not in free:
            continue
        free[name] += freed
        new_slots = free[name] // per_worker
        total += new_slots - slots[name]
        slots[name] = new_slots
        start_at = end
    if total < workers:
        return Reservation(job.id, job.flavor, math.inf)
    chosen = sorted((s, name) for name, s in slots.items() if s > 0)
    chosen.reverse()
    spare: dict[str, int] = {}
    remaining = workers
    for count, name in chosen:
        if remaining <= 0:
            break
        take = min(count, remaining)
        remaining -= take
        spare[name] = free[name] - take * per_worker
    return Reservation(job.id, job.flavor, max(start_at, now), spare)
