"""EASY backfill: reserve the earliest start of the first job blocked by capacity.

When the first job (in queue order) of a flavor fits its quota but not the free nodes, the cycle
projects when enough GPUs of that flavor will be free, from the running jobs' time limits, and
reserves that instant for it. A later job may start now only if it is certain to end before the
reservation (its ``max_runtime_seconds`` says so) or if it fits in the GPUs that will be left over
at the reservation anyway. A job without a time limit can only use that leftover, so it never
delays the reservation; running jobs without a time limit are assumed never to end.

The projection counts GPUs per flavor, not per node: a simplification that ignores fragmentation
of the reserved capacity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scheduler.model import JobState


@dataclass(slots=True)
class Reservation:
    job_id: str
    flavor: str
    start_at: float
    spare_gpus: int

    def permits(self, job: JobState, now: float) -> bool:
        """Whether starting ``job`` now cannot delay the reserved job."""
        if job.max_runtime_seconds is not None and now + job.max_runtime_seconds <= self.start_at:
            return True
        return job.total().gpu <= self.spare_gpus

    def commit(self, job: JobState, now: float) -> None:
        """Record that ``job`` started under this reservation."""
        ends_in_time = (
            job.max_runtime_seconds is not None and now + job.max_runtime_seconds <= self.start_at
        )
        if not ends_in_time:
            self.spare_gpus -= job.total().gpu


def reserve(
    job: JobState, free_gpus: int, releases: Iterable[tuple[float, int]], now: float
) -> Reservation:
    """The earliest instant at which ``job``'s GPUs are free, given ``releases``: (end, GPUs) of
    the running jobs with a time limit, soonest first
    (:meth:`scheduler.state.SchedulingState.releases`)."""
    needed = job.total().gpu
    available = free_gpus
    start_at = math.inf
    for end, gpus in releases:
        if end > start_at:
            break
        available += gpus
        if available >= needed and math.isinf(start_at):
            start_at = end
    return Reservation(job.id, job.flavor, max(start_at, now), max(0, available - needed))
