"""When will a queued job start? (Slurm's ``squeue --start``.)

:func:`project` runs the production cycle (:func:`scheduler.cycle.schedule`) forward in time on
a copy of the snapshot: every running job is assumed to run until its time limit, the queue keeps
its order, nothing new arrives and nobody is preempted. At each instant where something ends (or
a backoff passes) the cycle runs again; the instant a job is admitted in this projection is its
estimated start. A job whose dependencies are met in the projection (the jobs it waits for end
at their time limits, counted as succeeded) is projected like any other; held jobs and jobs of
stopped tenants and flavors get no estimate.

Jobs without a time limit have no known end: the projection lets them end at once, so any
estimate made after such a job's end is flagged ``bound``: the job starts *at the earliest*
then. Because real jobs usually end before their limit, and other jobs arrive, estimates are
otherwise approximations in both directions; the simulator measures their error on the Philly
trace (``yushan simulate --estimate-starts``, docs/benchmarks.md).

The loop refreshes the estimates of the first :data:`ESTIMATED_PER_TENANT` jobs of every tenant
after its iterations (at most every ``estimate_interval_seconds``), projecting only those jobs
and the ones its last cycle admitted (a job further back in a tenant's queue cannot start
before the ones ahead of it, but other tenants' deeper jobs are ignored, which makes the
projection slightly optimistic); ``GET /v1/jobs/{id}/estimate`` projects any one job on demand,
with every job of its tenant ahead of it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from scheduler import explain
from scheduler.cycle import schedule
from scheduler.gates import FLAVOR_HELD, HELD, TENANT_HELD
from scheduler.model import JobState, Pending, Snapshot
from scheduler.policy import Policy
from scheduler.state import SchedulingState

ESTIMATED_PER_TENANT = 10
"""Jobs of each tenant whose estimate the loop refreshes every cycle."""
MAX_STEPS = 512
"""Instants the projection visits at most; jobs still waiting then get no estimate."""
RESOLUTION_SECONDS = 60.0
LEAD_FRACTION = 0.02
"""Ends within ``max(RESOLUTION_SECONDS, LEAD_FRACTION x time from now)`` of the next one are
taken together: one cycle for all of them, so an estimate may be late by that much (a minute
in the next hour, 30 minutes a day ahead), far less than what real run times change."""


@dataclass(frozen=True, slots=True)
class Estimate:
    start: float
    bound: bool
    """Only "at the earliest": a job without a time limit was assumed to end."""

    def describe(self) -> str:
        """The estimate to the next whole minute: finer would be false precision, and a text
        that changed every second would have the loop rewrite the job every cycle."""
        minute = math.ceil(self.start / 60.0) * 60.0
        text = f"estimated to start at {explain.instant(minute)}"
        return f"{text} at the earliest (running jobs without a time limit)" if self.bound else text


def project(
    snapshot: Snapshot,
    policy: Policy,
    targets: Collection[str],
    window: Iterable[str] | None = None,
    max_steps: int = MAX_STEPS,
) -> dict[str, Estimate]:
    """Estimated starts of ``targets``; the projection considers the queued jobs of ``window``
    (all when ``None``; it should contain the targets and the jobs ahead of them)."""
    wanted = set(targets)
    allowed = None if window is None else set(window) | wanted
    queue = {j.id: j for j in snapshot.queued if allowed is None or j.id in allowed}
    quiet = replace(policy, preemption=False)
    state = SchedulingState(
        snapshot.tenants, snapshot.cohorts, snapshot.nodes, snapshot.running, policy.topology_label
    )
    outcomes = dict(snapshot.controls.outcomes)
    controls = replace(snapshot.controls, outcomes=outcomes)
    now = snapshot.now
    ends = [(_end(job, now), job.id) for job in snapshot.running]
    heapq.heapify(ends)
    wakes = sorted(j.not_before for j in queue.values() if j.not_before and j.not_before > now)
    unlimited: set[str] = set()
    """Flavors where a job without a time limit was assumed to end."""
    estimates: dict[str, Estimate] = {}
    first = True
    for _ in range(max_steps):
        ended = False
        while ends and ends[0][0] <= now:
            _, job_id = heapq.heappop(ends)
            job = state.stop(job_id)
            outcomes[job_id] = "succeeded"
            ended = True
            if job.max_runtime_seconds is None:
                unlimited.add(job.flavor)
        woke = bool(wakes) and wakes[0] <= now
        wakes = [t for t in wakes if t > now]
        if first or woke or (ended and _room(state, queue.values())):
            first = False
            result = schedule(
                state,
                list(queue.values()),
                now,
                quiet,
                snapshot.usage,
                explain_all=False,
                controls=controls,
            ).result
            for admit in result.admitted:
                job = queue.pop(admit.job_id)
                if job.id in wanted:
                    estimates[job.id] = Estimate(now, job.flavor in unlimited)
                heapq.heappush(ends, (_end(job, now), job.id))
            for failure in result.failed:
                if queue.pop(failure.job_id, None) is not None:
                    outcomes[failure.job_id] = "failed"
        if wanted <= estimates.keys() or not queue:
            break
        later = [t for t in (ends[0][0] if ends else None, wakes[0] if wakes else None) if t]
        if not later:
            break
        step = max(now, min(later))
        slack = max(RESOLUTION_SECONDS, LEAD_FRACTION * (step - snapshot.now))
        merged = [end for end, _ in ends if end <= step + slack]
        now = max([step, *merged]) if merged else step
    return estimates


def _room(state: SchedulingState, queue: Iterable[JobState]) -> bool:
    """Whether some flavor has as many free GPUs as its smallest waiting job needs: without,
    nothing can start, and the cycle is skipped. (Ends that free no room still change
    outcomes, which a later cycle sees.)"""
    smallest: dict[str, int] = {}
    for job in queue:
        gpus = job.demand.gpu * job.workers
        if gpus < smallest.get(job.flavor, gpus + 1):
            smallest[job.flavor] = gpus
    free = state.cluster.free_gpus
    return any(free(flavor) >= gpus for flavor, gpus in smallest.items())


def _end(job: JobState, now: float) -> float:
    start = job.admitted_at if job.admitted_at is not None else now
    return now if job.max_runtime_seconds is None else start + job.max_runtime_seconds


def heads(pending: Iterable[Pending], per_tenant: int = ESTIMATED_PER_TENANT) -> list[str]:
    """The first ``per_tenant`` waiting jobs of each tenant, by their place in this cycle."""
    return [job_id for job_id, _, in_tenant, _, _ in pending if 0 < in_tenant <= per_tenant]


NO_ESTIMATE = frozenset({HELD, TENANT_HELD, FLAVOR_HELD})
"""Reasons of jobs that start only once someone acts: an earlier estimate no longer holds."""


def applicable(
    pending: Iterable[Pending], estimates: Mapping[str, Estimate]
) -> dict[str, Estimate]:
    """The estimates (possibly from an earlier cycle) of jobs that may still start on their own."""
    return {
        job_id: estimates[job_id]
        for job_id, _, _, reason, _ in pending
        if job_id in estimates and reason not in NO_ESTIMATE
    }


def annotate(pending: Iterable[Pending], estimates: Mapping[str, Estimate]) -> list[Pending]:
    """The cycle's pending entries with each estimate added to the "why waiting" message."""
    out = []
    for entry in pending:
        job_id, position, in_tenant, reason, message = entry
        estimate = estimates.get(job_id)
        if estimate is None:
            out.append(entry)
        else:
            out.append((job_id, position, in_tenant, reason, f"{message}; {estimate.describe()}"))
    return out
