"""Trace-driven simulation of the scheduler on a discrete-event virtual clock.

The simulator replays a Philly-format trace against an in-memory cluster with the very same cycle
(:func:`scheduler.cycle.schedule`) the scheduler loop runs; no database, no HTTP. Events are job
arrivals, completions, time-limit expiries and the end of requeue backoffs. At each event time it
updates decayed usage, applies the events and runs cycles until nothing changes.

To keep a replay of the full trace within a minute, two things keep the cycle small:

* one long-lived :class:`~scheduler.state.SchedulingState` is updated incrementally instead of
  rebuilding quota and capacity accounting from scratch for every cycle;
* the cycle is given, per tenant and job shape (flavor, gang size, per-worker demand), only the
  first ``window`` jobs in the tenant's order. A job of the same shape further back cannot start
  while the ones ahead of it cannot; when a whole window starts, the cycle simply runs again.

**Checkpoints.** A deterministic share of the jobs (``checkpoint_share``, chosen by a CRC-32 of
the job id, so the same jobs every run) save their progress every ``checkpoint_interval``
seconds (:attr:`JobState.checkpoint_interval_seconds`). An evicted job keeps the work up to its
last checkpoint: its remaining run time and its ``max_runtime_seconds`` both shrink by the saved
work, so that backfill projections stay right. A job that does not checkpoint restarts from zero.
Requeued jobs carry their eviction instants of the last 24 hours in ``evicted_at``. The work
thrown away (:func:`scheduler.model.lost_gpu_seconds`) is counted in the report.

**Queue controls.** Per-user limits (``user_limits``, applied to every tenant; the Philly trace
has no users, so each tenant is one user) and array parallelism are enforced by the cycle
itself (:mod:`scheduler.limits`). Dependencies (:attr:`JobState.depends_on`) are resolved on
events: a job whose dependencies are open waits outside the queue, and is queued when they are
all met or fails with ``DependencyNeverSatisfied`` when one can never be (the verdicts of
:mod:`scheduler.dependencies`, as in the cycle).

**Start estimates.** With ``estimate_starts``, every job that does not start at the instant it
arrives gets the estimate the scheduler would show then (:func:`scheduler.estimate.project`
over the running jobs' time limits and the queue, with the jobs of its lane ahead of it and the
first ``window`` jobs of every lane), and the report compares it with the job's first actual
start: median and p90 absolute error, mean signed error (positive: the job started later than
estimated), and how many estimates were "at the earliest" bounds or could not be made.

**Report.** Job completion time (JCT) and queueing delay are taken over succeeded jobs; queueing
delay is completion time minus submission minus the job's run time, so it includes work lost to
evictions and the backoffs. Also: makespan, GPU utilisation, preemptions, jobs failed at the retry
limit or at their time limit, lost GPU-hours, quota and capacity violations (which must be 0),
and the longest and median wait per gang-size bucket (over succeeded and failed jobs).

**Fairness.** Sampled every hour of simulated time (on a fixed grid, with the state in force at
that instant) while some tenant waits. Each tenant's *fair allocation* is computed by weighted
max-min (water-filling, :func:`fair_allocation`) of the flavor's GPUs over the current demand
(GPUs running + GPUs waiting), with weight = tenant weight x nominal GPUs, **hierarchically along
the cohort tree**: the capacity is first divided among the root's children (cohorts and tenants)
by the summed weight of each subtree, capped at each subtree's demand, and what a satisfied
subtree does not need goes to its siblings; then each cohort's part is divided among its own
children the same way. Tenants of zero weight (nominal 0) get only what positive-weight tenants
leave (equal weights among them). A tenant's demand is capped at nominal + borrowing limit when it
has one; cohort limits and lending limits are not modelled. The report gives per tenant the GPUs
held against the fair allocation (time-averaged: sum over samples of held / sum of fair) and
Jain's index over the per-sample ratios ``held / max(fair, 1 GPU)`` averaged over samples
(``jain_fairness``), so a tenant that keeps borrowed capacity while others wait lowers it even if
every nominal quota is met. The older index, which only checks that each tenant gets
``min(demand, nominal)``, is kept as ``jain_nominal``.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from quotas.decay import decay
from scheduler.backoff import requeue_delay
from scheduler.cycle import schedule
from scheduler.dependencies import Verdict, evaluate
from scheduler.estimate import project
from scheduler.gates import DEPENDENCY_NEVER_SATISFIED
from scheduler.model import (
    GPU,
    NO_CONTROLS,
    CohortSpec,
    CycleResult,
    Demand,
    JobState,
    Priority,
    QueueControls,
    Snapshot,
    TenantSpec,
    UsageState,
    UserLimits,
    lost_gpu_seconds,
    unsaved_seconds,
)
from scheduler.policy import POLICY_NAMES, Policy
from scheduler.simconfig import (
    ClusterConfig,
    QuotaConfig,
    SimulationInputError,
    TraceRow,
    load_cluster,
    load_quotas,
    read_trace,
)
from scheduler.simspend import Held, PriceTable, load_prices, spend_per_tenant
from scheduler.state import SchedulingState

DEFAULT_TRACE = Path("examples/philly/sample.csv")
"""The sample shipped with the repository; the full trace is named in examples/philly/README.md."""
DEFAULT_CLUSTER = Path("examples/philly/cluster.yaml")
DEFAULT_QUOTAS = Path("examples/philly/quotas.yaml")
DEFAULT_CHECKPOINT_INTERVAL = 1800
MAX_ROUNDS_PER_INSTANT = 64
FAIRNESS_SAMPLE_SECONDS = 3600.0
EVICTION_MEMORY_SECONDS = 86_400.0
GANG_BUCKETS: tuple[tuple[str, int], ...] = (
    ("1-7", 1),
    ("8-15", 8),
    ("16-23", 16),
    ("24-63", 24),
    ("64+", 64),
)
"""Gang-size buckets (label, smallest GPU count): on the Philly trace 8 (and 12), 16, 24-32, 64+."""

SUCCEEDED, FAILED, UNFINISHED = "succeeded", "failed", "unfinished"
RETRY_LIMIT, DEADLINE = "RetryLimitExceeded", "DeadlineExceeded"

_FINISH, _DEADLINE, _WAKE = 0, 1, 2

ProgressCallback = Callable[[float, int, int], None]
"""Called now and then with (simulated seconds since the first submission, jobs done, jobs)."""


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job's outcome; times in seconds from the trace start (the first submission).

    ``start_time`` is the *last* start of a requeued job. ``run_seconds`` is the work done that
    counts: the whole run time for a succeeded job, the work saved by checkpoints plus the last
    attempt's run for a failed one. ``queueing_seconds = end - submit - run_seconds``, so it
    includes work lost to evictions. Unfinished jobs have no end (``None``).
    """

    job_id: str
    tenant: str
    gpus: int
    submit_time: float
    start_time: float | None
    end_time: float | None
    queueing_seconds: float | None
    run_seconds: float
    preemptions: int
    outcome: str
    reason: str = ""


@dataclass(slots=True)
class SimulationReport:
    policy: str
    jobs: int
    completed: int
    failed: int
    failed_retry_limit: int
    failed_deadline: int
    unfinished: int
    avg_jct_seconds: float
    p50_jct_seconds: float
    p99_jct_seconds: float
    avg_queueing_delay_seconds: float
    p50_queueing_delay_seconds: float
    p99_queueing_delay_seconds: float
    p99_queueing_delay_all_seconds: float
    """Over succeeded *and failed* jobs (a failed job's time from submission to its failure,
    less its last attempt's run): a policy cannot improve it by failing its worst-served jobs,
    as it can the figures over succeeded jobs."""
    makespan_seconds: float
    gpu_utilisation: float
    jain_fairness: float
    jain_nominal: float
    fairness_samples: int
    preemptions: int
    lost_gpu_seconds: float
    checkpointing_jobs: int
    quota_violations: int
    capacity_violations: int
    cycles: int
    wall_seconds: float
    tenants: dict[str, dict[str, float]] = field(default_factory=dict)
    gang_waits: dict[str, dict[str, float]] = field(default_factory=dict)
    start_estimates: dict[str, float] | None = None
    """With ``estimate_starts``: the error of the estimated start of jobs that had to wait."""
    spend: dict[str, dict[str, Any]] | None = None
    """With ``--prices``: per tenant, kind, GPU-hours, cost, credited losses and net (credits)."""
    records: list[JobRecord] = field(default_factory=list, repr=False)
    """Per-job outcomes (``--jobs-out``); not part of :meth:`as_dict`."""

    def as_dict(self) -> dict[str, object]:
        return {
            name: getattr(self, name) for name in self.__dataclass_fields__ if name != "records"
        }


def _shape_of(gpus: int, per_node: int) -> tuple[int, int]:
    """(workers, GPUs per worker) for a job of ``gpus`` GPUs on nodes of ``per_node``."""
    if gpus <= per_node:
        return 1, gpus
    workers = math.ceil(gpus / per_node)
    if gpus % workers == 0:
        return workers, gpus // workers
    return gpus, 1


def checkpoints(job_id: str, share: float) -> bool:
    """Whether ``job_id`` is among the ``share`` of jobs that checkpoint (stable across runs)."""
    if share <= 0:
        return False
    return zlib.crc32(job_id.encode()) < share * 2**32


def jobs_from_trace(
    rows: Sequence[TraceRow],
    cluster: ClusterConfig,
    quotas: QuotaConfig,
    time_scale: float = 1.0,
    runtime_limit_factor: float = 1.0,
    checkpoint_share: float = 0.0,
    checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
) -> tuple[list[JobState], dict[str, float]]:
    """Queued jobs (ids ``j0``, ``j1`` …) and their true run times, from trace rows."""
    if not rows:
        return [], {}
    origin = rows[0].submitted_at
    jobs: list[JobState] = []
    durations: dict[str, float] = {}
    flavors = {t: _flavor_for(t, cluster, quotas) for t in {row.tenant for row in rows}}
    nodes = {f: cluster.node_of(f) for f in set(flavors.values())}
    for index, row in enumerate(rows):
        flavor = flavors[row.tenant]
        node = nodes[flavor]
        per_node = node.allocatable.gpu
        workers, per_worker = _shape_of(row.gpus, per_node)
        demand = Demand(
            per_worker,
            node.allocatable.cpu_milli * per_worker // per_node,
            node.allocatable.memory_bytes * per_worker // per_node,
        )
        job_id = f"j{index}"
        durations[job_id] = row.duration
        jobs.append(
            JobState(
                id=job_id,
                tenant=row.tenant,
                user=row.tenant,
                flavor=flavor,
                workers=workers,
                demand=demand,
                priority=Priority.NORMAL,
                submitted_at=origin + (row.submitted_at - origin) * time_scale,
                max_runtime_seconds=math.ceil(row.duration * runtime_limit_factor),
                checkpoint_interval_seconds=(
                    checkpoint_interval if checkpoints(job_id, checkpoint_share) else None
                ),
            )
        )
    return jobs, durations


def _flavor_for(tenant: str, cluster: ClusterConfig, quotas: QuotaConfig) -> str:
    spec = quotas.tenants.get(tenant)
    if spec is not None:
        for flavor, resource in spec.quotas:
            if resource == GPU and flavor in cluster.flavors:
                return flavor
    return cluster.flavors[0]


def _within_tenant(job: JobState) -> tuple[int, float, str]:
    return (-int(job.priority), job.submitted_at, job.id)


# -- fair allocation ----------------------------------------------------------------------------


def water_fill(
    capacity: float, demands: Mapping[str, float], weights: Mapping[str, float]
) -> dict[str, float]:
    """Weighted max-min allocation of ``capacity`` capped at each demand.

    Every claimant gets ``capacity x weight / total weight`` unless it wants less; what it does
    not take is shared among the others the same way. Claimants of weight 0 share, equally, what
    the others leave.
    """
    allocation = dict.fromkeys(demands, 0.0)
    left = max(0.0, capacity)
    for positive in (True, False):
        group = [n for n in demands if (weights.get(n, 0.0) > 0) == positive and demands[n] > 0]
        weight = {n: weights.get(n, 0.0) if positive else 1.0 for n in group}
        group.sort(key=lambda n: demands[n] / weight[n])
        total = sum(weight.values())
        for name in group:
            if left <= 0 or total <= 0:
                break
            share = min(demands[name], left * weight[name] / total)
            allocation[name] = share
            left -= share
            total -= weight[name]
    return allocation


def fair_allocation(
    capacity: float,
    demand: Mapping[str, float],
    tenants: Mapping[str, TenantSpec],
    cohorts: Mapping[str, CohortSpec],
    flavor: str,
) -> dict[str, float]:
    """Each tenant's fair share of ``capacity`` GPUs of ``flavor``, water-filled along the tree.

    Weights are tenant weight x nominal GPUs; a cohort weighs what its tenants weigh. Demand is
    capped at nominal + borrowing limit where a tenant has a limit.
    """
    fr = (flavor, GPU)
    capped: dict[str, float] = {}
    weight: dict[str, float] = {}
    for name, spec in tenants.items():
        limits = spec.quotas.get(fr)
        nominal = limits.nominal if limits is not None else 0
        wanted = demand.get(name, 0.0)
        if limits is not None and limits.borrowing_limit is not None:
            wanted = min(wanted, nominal + limits.borrowing_limit)
        capped[name] = wanted
        weight[name] = spec.weight * nominal
    children: dict[str | None, list[tuple[str, bool]]] = {}
    for name, spec in tenants.items():
        parent = spec.cohort if spec.cohort in cohorts else None
        children.setdefault(parent, []).append((name, True))
    for name, cohort in cohorts.items():
        parent = cohort.parent if cohort.parent in cohorts else None
        children.setdefault(parent, []).append((name, False))
    subtree_demand: dict[tuple[str, bool], float] = {}
    subtree_weight: dict[tuple[str, bool], float] = {}

    def measure(node: tuple[str, bool], seen: frozenset[str]) -> None:
        name, is_tenant = node
        if is_tenant:
            subtree_demand[node], subtree_weight[node] = capped[name], weight[name]
            return
        if name in seen:  # a cycle in the cohort tree: ignore the back edge
            subtree_demand[node] = subtree_weight[node] = 0.0
            return
        kids = children.get(name, [])
        for kid in kids:
            measure(kid, seen | {name})
        subtree_demand[node] = sum(subtree_demand[k] for k in kids)
        subtree_weight[node] = sum(subtree_weight[k] for k in kids)

    allocation: dict[str, float] = {}

    def divide(parent: str | None, amount: float, seen: frozenset[str]) -> None:
        kids = [k for k in children.get(parent, []) if k[1] or k[0] not in seen]
        for kid in kids:
            measure(kid, seen)
        keys = {f"{'t' if k[1] else 'c'}:{k[0]}": k for k in kids}
        shares = water_fill(
            amount,
            {key: subtree_demand[k] for key, k in keys.items()},
            {key: subtree_weight[k] for key, k in keys.items()},
        )
        for key, kid in keys.items():
            if kid[1]:
                allocation[kid[0]] = shares[key]
            else:
                divide(kid[0], shares[key], seen | {kid[0]})

    divide(None, capacity, frozenset())
    return {name: allocation.get(name, 0.0) for name in tenants}


def _jain_raw(values: Sequence[float]) -> float:
    """Jain's index of ``values`` (1 when all are equal)."""
    squares = sum(x * x for x in values)
    return (sum(values) ** 2) / (len(values) * squares) if squares > 0 else 1.0


def _jain(values: Iterable[float]) -> float:
    """Jain's fairness index of satisfactions capped at 1."""
    return _jain_raw([min(x, 1.0) for x in values])


def gang_bucket(gpus: int) -> str:
    label = GANG_BUCKETS[0][0]
    for name, smallest in GANG_BUCKETS:
        if gpus >= smallest:
            label = name
    return label


# -- the simulation -----------------------------------------------------------------------------

Lane = tuple[str, str, int, Demand]


class _Simulation:
    def __init__(
        self,
        jobs: list[JobState],
        durations: dict[str, float],
        cluster: ClusterConfig,
        quotas: QuotaConfig,
        policy: Policy,
        window: int,
        controls: QueueControls = NO_CONTROLS,
        estimate_starts: bool = False,
    ) -> None:
        self.policy = policy
        self.cluster = cluster
        self.estimate_starts = estimate_starts
        self.arrived: list[str] = []
        self.first_start: dict[str, float] = {}
        self.predicted: dict[str, tuple[float, bool] | None] = {}
        self.outcomes: dict[str, str] = {j.id: "queued" for j in jobs}
        """Each job's status, read by dependency verdicts."""
        self.controls = replace(controls, outcomes=self.outcomes)
        self.blocked: dict[str, JobState] = {}
        """Arrived jobs waiting for their dependencies, outside the queue."""
        self.dependents: dict[str, list[str]] = {}
        self.window = window
        self.quotas = quotas
        self.durations = durations
        self.remaining = dict(durations)
        self.pending_arrivals = sorted(jobs, key=lambda j: (j.submitted_at, j.id))
        self.next_arrival = 0
        self.total_gpus = sum(n.allocatable.gpu for n in cluster.nodes)
        self.flavor_gpus: dict[str, int] = {}
        for node in cluster.nodes:
            if node.flavor is not None and node.schedulable:
                self.flavor_gpus[node.flavor] = (
                    self.flavor_gpus.get(node.flavor, 0) + node.allocatable.gpu
                )
        self.tenant_flavor = {t: _flavor_for(t, cluster, quotas) for t in quotas.tenants}
        self.state = SchedulingState(
            quotas.tenants, quotas.cohorts, cluster.nodes, [], policy.topology_label
        )
        self.lanes: dict[Lane, list[JobState]] = {}
        self.waiting: dict[str, JobState] = {}
        self.events: list[tuple[float, int, int, str, int]] = []
        self.sequence = 0
        self.tokens: dict[str, int] = {}
        self.usage: dict[str, float] = {}
        self.in_use: dict[str, int] = {}
        self.usage_clock: float | None = None
        self.submitted: dict[str, float] = {j.id: j.submitted_at for j in jobs}
        self.finished: dict[str, float] = {}
        self.failed: dict[str, tuple[float, str]] = {}
        self.last_start: dict[str, float] = {}
        self.evictions: dict[str, int] = {}
        self.gpu_seconds: dict[str, float] = {}
        self.held: dict[tuple[str, str], Held] = {}
        """Resource-seconds per (tenant, flavor), for the spend of ``--prices``."""
        self.lost: dict[str, float] = {}
        self.preemptions = 0
        self.quota_violations = 0
        self.capacity_violations = 0
        self.cycles = 0
        self.nominal_gpus = {
            name: sum(q.nominal for (_, r), q in spec.quotas.items() if r == GPU)
            for name, spec in quotas.tenants.items()
        }
        self.waiting_gpus: dict[str, int] = {}
        self.origin = self.pending_arrivals[0].submitted_at if jobs else 0.0
        self.next_sample = self.origin
        self.jain_samples: list[float] = []
        self.jain_nominal_samples: list[float] = []
        self.satisfaction: dict[str, list[float]] = {}
        self.held_sum: dict[str, float] = {}
        self.fair_sum: dict[str, float] = {}
        self.contended_samples: dict[str, int] = {}

    # -- events ----------------------------------------------------------------------------

    def _push(self, at: float, kind: int, job_id: str) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (at, kind, self.sequence, job_id, self.tokens.get(job_id, 0)))

    def _next_time(self) -> float | None:
        candidates = []
        if self.next_arrival < len(self.pending_arrivals):
            candidates.append(self.pending_arrivals[self.next_arrival].submitted_at)
        if self.events:
            candidates.append(self.events[0][0])
        return min(candidates, default=None)

    def _lane(self, job: JobState) -> Lane:
        return (job.tenant, job.flavor, job.workers, job.demand)

    def _enqueue(self, job: JobState) -> None:
        bisect.insort(self.lanes.setdefault(self._lane(job), []), job, key=_within_tenant)

    def _advance_usage(self, now: float) -> None:
        if self.usage_clock is not None and now > self.usage_clock:
            dt = now - self.usage_clock
            for tenant in set(self.usage) | set(self.in_use):
                current = self.in_use.get(tenant, 0)
                old = self.usage.get(tenant, 0.0)
                self.usage[tenant] = decay(old, current, dt, self.policy.half_life_seconds)
        self.usage_clock = now

    def _apply_events(self, now: float) -> tuple[bool, bool]:
        """Process everything due by ``now``; returns whether capacity was freed and whether a
        time limit expired (the cycle must then run to fail the job)."""
        freed = overdue = False
        while self.events and self.events[0][0] <= now:
            _, kind, _, job_id, token = heapq.heappop(self.events)
            if token != self.tokens.get(job_id, 0):
                continue
            if kind == _FINISH and job_id in self.state.running:
                self._stop(job_id, now)
                self.remaining[job_id] = 0.0
                self.finished[job_id] = now
                self._ended(job_id, "succeeded", now)
                freed = True
            elif kind == _DEADLINE and job_id in self.state.running:
                overdue = True
            elif kind == _WAKE and job_id in self.waiting:
                self._enqueue(self.waiting.pop(job_id))
        while (
            self.next_arrival < len(self.pending_arrivals)
            and self.pending_arrivals[self.next_arrival].submitted_at <= now
        ):
            arrival = self.pending_arrivals[self.next_arrival]
            self.next_arrival += 1
            self.arrived.append(arrival.id)
            if arrival.depends_on:
                self._arrive_dependent(arrival, now)
                continue
            self._enqueue(arrival)
            self._add_waiting(arrival, 1)
        return freed, overdue

    # -- dependencies ----------------------------------------------------------------------

    def _arrive_dependent(self, job: JobState, now: float) -> None:
        self.blocked[job.id] = job
        for dependency in job.depends_on:
            self.dependents.setdefault(dependency.job_id, []).append(job.id)
        self._judge(job.id, now)

    def _judge(self, job_id: str, now: float) -> None:
        """Queue a blocked job whose dependencies are all met; fail one that can never start."""
        job = self.blocked[job_id]
        verdict, _ = evaluate(job.depends_on, self.outcomes)
        if verdict is Verdict.OPEN:
            return
        del self.blocked[job_id]
        if verdict is Verdict.MET:
            self._enqueue(job)
            self._add_waiting(job, 1)
        else:
            self.failed[job_id] = (now, DEPENDENCY_NEVER_SATISFIED)
            self._ended(job_id, "failed", now)

    def _ended(self, job_id: str, status: str, now: float) -> None:
        """Record a final status and judge the jobs that depend on it."""
        self.outcomes[job_id] = status
        for dependent in self.dependents.pop(job_id, ()):
            if dependent in self.blocked:
                self._judge(dependent, now)

    def _stop(self, job_id: str, now: float) -> JobState:
        job = self.state.stop(job_id)
        gpus = job.total().gpu
        self.in_use[job.tenant] = self.in_use.get(job.tenant, 0) - gpus
        started = job.admitted_at if job.admitted_at is not None else now
        self.gpu_seconds[job.tenant] = self.gpu_seconds.get(job.tenant, 0.0) + gpus * (
            now - started
        )
        held = self.held.setdefault((job.tenant, job.flavor), Held())
        total = job.total()
        held.gpu_seconds += gpus * (now - started)
        held.cpu_milli_seconds += total.cpu_milli * (now - started)
        held.memory_byte_seconds += total.memory_bytes * (now - started)
        self.tokens[job_id] = self.tokens.get(job_id, 0) + 1
        return job

    # -- cycles ----------------------------------------------------------------------------

    def _window_jobs(self) -> list[JobState]:
        return [job for lane in self.lanes.values() for job in lane[: self.window]]

    def _saturated(self) -> bool:
        cluster = self.state.cluster
        flavors = {lane[1] for lane, jobs in self.lanes.items() if jobs}
        return all(cluster.free_gpus(f) == 0 for f in flavors)

    def _run_cycles(self, now: float, freed: bool, overdue: bool) -> None:
        if not overdue and not any(self.lanes.values()):
            return
        if not (freed or overdue) and not self.policy.preempts and self._saturated():
            return
        preempting: frozenset[str] = frozenset()
        for _ in range(MAX_ROUNDS_PER_INSTANT):
            queued = self._window_jobs()
            usage = UsageState(dict(self.usage))
            outcome = schedule(
                self.state,
                queued,
                now,
                self.policy,
                usage,
                preempting,
                explain_all=False,
                controls=self.controls,
            )
            self.cycles += 1
            self._check_invariants(outcome.result)
            again = self._apply(outcome.result, now)
            preempting = frozenset(p.preemptor_id for p in outcome.result.preempted)
            if not again:
                return

    def _check_invariants(self, result: CycleResult) -> None:
        """Only admissions add usage, so checking what they touched is enough."""
        if not result.admitted:
            return
        tenants = {self.state.running[a.job_id].tenant for a in result.admitted}
        nodes = {name for a in result.admitted for name in a.placement}
        self.quota_violations += len(self.state.tree.violations(tenants))
        self.capacity_violations += len(self.state.cluster.oversubscribed(nodes))

    def _apply(self, result: CycleResult, now: float) -> bool:
        """Apply decisions; returns whether another cycle at the same instant may do more."""
        started_lanes: dict[Lane, int] = {}
        for admit in result.admitted:
            job = self.state.running[admit.job_id]
            lane = self._lane(job)
            self.lanes[lane].remove(next(j for j in self.lanes[lane] if j.id == job.id))
            started_lanes[lane] = started_lanes.get(lane, 0) + 1
            self.in_use[job.tenant] = self.in_use.get(job.tenant, 0) + job.total().gpu
            self._add_waiting(job, -1)
            self.last_start[job.id] = now
            self.first_start.setdefault(job.id, now)
            remaining = self.remaining[job.id]
            limit = job.max_runtime_seconds
            if limit is not None and limit < remaining:
                self._push(now + limit, _DEADLINE, job.id)
            else:
                self._push(now + remaining, _FINISH, job.id)
        for failure in result.failed:
            if failure.job_id in self.state.running:
                job = self._stop(failure.job_id, now)
                self._progress(job, now, saved_only=False)
                self.failed[failure.job_id] = (now, failure.reason)
                self._ended(failure.job_id, "failed", now)
        for preemption in result.preempted:
            if preemption.job_id in self.state.running:
                running = self.state.running[preemption.job_id]
                self.lost[running.tenant] = self.lost.get(running.tenant, 0.0) + lost_gpu_seconds(
                    running, now
                )
                self._requeue(self._stop(preemption.job_id, now), now)
                self.preemptions += 1
        exhausted = any(
            count >= self.window and self.lanes[lane] for lane, count in started_lanes.items()
        )
        return bool(result.preempted) or bool(result.failed) or exhausted

    def _progress(self, job: JobState, now: float, saved_only: bool) -> float:
        """Take the work ``job`` did in its current attempt off its remaining run time: all of
        it, or (an eviction) only what its checkpoints saved. Returns the seconds saved."""
        if job.admitted_at is None:
            return 0.0
        ran = max(0.0, now - job.admitted_at)
        saved = ran - unsaved_seconds(job, now) if saved_only else ran
        saved = min(saved, self.remaining[job.id])
        self.remaining[job.id] -= saved
        return saved

    def _requeue(self, job: JobState, now: float) -> None:
        self.evictions[job.id] = self.evictions.get(job.id, 0) + 1
        saved = self._progress(job, now, saved_only=True)
        attempts = job.attempts + 1
        delay = requeue_delay(attempts, self.policy)
        if delay is None:
            self.failed[job.id] = (now, RETRY_LIMIT)
            self._ended(job.id, "failed", now)
            return
        limit = job.max_runtime_seconds
        if limit is not None and saved > 0:
            limit = max(1, math.ceil(limit - saved))
        recent = tuple(t for t in job.evicted_at if t > now - EVICTION_MEMORY_SECONDS)
        queued = replace(
            job,
            placement=None,
            admitted_at=None,
            attempts=attempts,
            not_before=now + delay,
            max_runtime_seconds=limit,
            evicted_at=(*recent, now),
        )
        self.waiting[job.id] = queued
        self._add_waiting(queued, 1)
        self._push(now + delay, _WAKE, job.id)

    def _add_waiting(self, job: JobState, sign: int) -> None:
        self.waiting_gpus[job.tenant] = self.waiting_gpus.get(job.tenant, 0) + sign * (
            job.demand.gpu * job.workers
        )

    # -- fairness --------------------------------------------------------------------------

    def _sample_until(self, now: float) -> None:
        """Take the hourly samples due before ``now``; the state has not changed since the
        previous event, so it is the state in force at each of those instants."""
        if self.next_sample >= now:
            return
        if not any(g > 0 for g in self.waiting_gpus.values()):
            steps = math.ceil((now - self.next_sample) / FAIRNESS_SAMPLE_SECONDS)
            self.next_sample += steps * FAIRNESS_SAMPLE_SECONDS
            return
        while self.next_sample < now:
            self._sample_fairness()
            self.next_sample += FAIRNESS_SAMPLE_SECONDS

    def _sample_fairness(self) -> None:
        tenants = self.quotas.tenants
        ratios: list[float] = []
        for flavor, capacity in self.flavor_gpus.items():
            members = [t for t in tenants if self.tenant_flavor[t] == flavor]
            demand = {
                t: float(self.in_use.get(t, 0) + self.waiting_gpus.get(t, 0)) for t in members
            }
            if not any(demand.values()):
                continue
            members_spec = {t: tenants[t] for t in members}
            fair = fair_allocation(capacity, demand, members_spec, self.quotas.cohorts, flavor)
            for tenant in members:
                if demand[tenant] <= 0:
                    continue
                held = float(self.in_use.get(tenant, 0))
                self.held_sum[tenant] = self.held_sum.get(tenant, 0.0) + held
                self.fair_sum[tenant] = self.fair_sum.get(tenant, 0.0) + fair[tenant]
                self.contended_samples[tenant] = self.contended_samples.get(tenant, 0) + 1
                ratios.append(held / max(fair[tenant], 1.0))
        if ratios:
            self.jain_samples.append(_jain_raw(ratios))
        values = []
        for tenant, nominal in self.nominal_gpus.items():
            in_use = self.in_use.get(tenant, 0)
            target = min(in_use + self.waiting_gpus.get(tenant, 0), nominal)
            if target > 0:
                satisfied = min(1.0, in_use / target)
                values.append(satisfied)
                self.satisfaction.setdefault(tenant, []).append(satisfied)
        if values:
            self.jain_nominal_samples.append(_jain(values))

    def run(self, progress: ProgressCallback | None = None, every: float = 0.5) -> None:
        last_report = time.perf_counter()
        total = len(self.pending_arrivals)
        while True:
            now = self._next_time()
            if now is None:
                break
            self._sample_until(now)
            self._advance_usage(now)
            self._run_cycles(now, *self._apply_events(now))
            if self.estimate_starts:
                self._estimate_arrivals(now)
            if progress is not None and time.perf_counter() - last_report >= every:
                last_report = time.perf_counter()
                progress(now - self.origin, len(self.finished) + len(self.failed), total)
        if progress is not None:
            end = max(self.finished.values(), default=self.origin) - self.origin
            progress(end, len(self.finished) + len(self.failed), total)

    # -- start estimates -------------------------------------------------------------------

    def _estimate_arrivals(self, now: float) -> None:
        """The estimate each job that arrived at ``now`` and could not start would be shown."""
        waiting = {job_id for job_id in self.arrived if job_id not in self.first_start}
        self.arrived = []
        if not waiting:
            return
        window: list[JobState] = []
        for lane in self.lanes.values():
            last = max((i for i, j in enumerate(lane) if j.id in waiting), default=-1)
            window += lane[: max(self.window, last + 1)]
        snapshot = Snapshot(
            now=now,
            nodes=self.cluster.nodes,
            tenants=self.quotas.tenants,
            cohorts=self.quotas.cohorts,
            queued=tuple(window),
            running=tuple(self.state.running.values()),
            usage=UsageState(dict(self.usage)),
            controls=self.controls,
        )
        estimates = project(snapshot, self.policy, waiting)
        for job_id in waiting:
            estimate = estimates.get(job_id)
            self.predicted[job_id] = None if estimate is None else (estimate.start, estimate.bound)

    def _estimate_errors(self) -> dict[str, float]:
        errors: list[float] = []
        bound = unestimated = 0
        for job_id, prediction in self.predicted.items():
            actual = self.first_start.get(job_id)
            if prediction is None:
                unestimated += 1
                continue
            if actual is None:
                continue
            errors.append(actual - prediction[0])
            bound += prediction[1]
        absolute = sorted(abs(e) for e in errors)
        return {
            "waiting_jobs": float(len(self.predicted)),
            "estimated": float(len(errors)),
            "unestimated": float(unestimated),
            "bounds": float(bound),
            "median_abs_error_seconds": _percentile(absolute, 50),
            "p90_abs_error_seconds": _percentile(absolute, 90),
            "mean_signed_error_seconds": _mean(errors),
        }

    # -- report ----------------------------------------------------------------------------

    def records(self) -> list[JobRecord]:
        out = []
        origin = self.origin
        for job in self.pending_arrivals:
            job_id = job.id
            start = self.last_start.get(job_id)
            submit = job.submitted_at
            reason = ""
            if job_id in self.finished:
                outcome, end = SUCCEEDED, self.finished[job_id]
            elif job_id in self.failed:
                end, reason = self.failed[job_id]
                outcome = FAILED
            else:
                outcome, end = UNFINISHED, None
            run_seconds = self.durations[job_id] - self.remaining[job_id]
            queueing = None if end is None else max(0.0, end - submit - run_seconds)
            out.append(
                JobRecord(
                    job_id=job_id,
                    tenant=job.tenant,
                    gpus=job.total().gpu,
                    submit_time=submit - origin,
                    start_time=None if start is None else start - origin,
                    end_time=None if end is None else end - origin,
                    queueing_seconds=queueing,
                    run_seconds=run_seconds,
                    preemptions=self.evictions.get(job_id, 0),
                    outcome=outcome,
                    reason=reason,
                )
            )
        return out

    def report(self, policy_name: str, wall: float) -> SimulationReport:
        records = self.records()
        succeeded = [r for r in records if r.outcome == SUCCEEDED]
        jct = sorted(r.end_time - r.submit_time for r in succeeded if r.end_time is not None)
        delays = sorted(r.queueing_seconds for r in succeeded if r.queueing_seconds is not None)
        ended = (r for r in records if r.outcome != UNFINISHED)
        all_delays = sorted(r.queueing_seconds for r in ended if r.queueing_seconds is not None)
        ends = [r.end_time for r in records if r.end_time is not None]
        makespan = max(ends, default=0.0)
        used = sum(self.gpu_seconds.values())
        failed = [r for r in records if r.outcome == FAILED]
        return SimulationReport(
            policy=policy_name,
            jobs=len(records),
            completed=len(succeeded),
            failed=len(failed),
            failed_retry_limit=sum(1 for r in failed if r.reason == RETRY_LIMIT),
            failed_deadline=sum(1 for r in failed if r.reason == DEADLINE),
            unfinished=sum(1 for r in records if r.outcome == UNFINISHED),
            avg_jct_seconds=_mean(jct),
            p50_jct_seconds=_percentile(jct, 50),
            p99_jct_seconds=_percentile(jct, 99),
            avg_queueing_delay_seconds=_mean(delays),
            p50_queueing_delay_seconds=_percentile(delays, 50),
            p99_queueing_delay_seconds=_percentile(delays, 99),
            p99_queueing_delay_all_seconds=_percentile(all_delays, 99),
            makespan_seconds=makespan,
            gpu_utilisation=used / (self.total_gpus * makespan) if makespan > 0 else 0.0,
            jain_fairness=_mean(self.jain_samples) if self.jain_samples else 1.0,
            jain_nominal=_mean(self.jain_nominal_samples) if self.jain_nominal_samples else 1.0,
            fairness_samples=len(self.jain_samples),
            preemptions=self.preemptions,
            lost_gpu_seconds=sum(self.lost.values()),
            checkpointing_jobs=sum(
                1 for j in self.pending_arrivals if j.checkpoint_interval_seconds is not None
            ),
            quota_violations=self.quota_violations,
            capacity_violations=self.capacity_violations,
            cycles=self.cycles,
            wall_seconds=wall,
            tenants=self._tenant_table(records),
            gang_waits=_gang_waits(records),
            start_estimates=self._estimate_errors() if self.estimate_starts else None,
            records=records,
        )

    def _tenant_table(self, records: Sequence[JobRecord]) -> dict[str, dict[str, float]]:
        """Per tenant: share of GPU time received, entitled (nominal) and demanded (trace), GPUs
        held against the fair allocation, and queueing delays."""
        demand: dict[str, float] = {}
        jobs: dict[str, int] = {}
        jct: dict[str, list[float]] = {}
        delays: dict[str, list[float]] = {}
        for record in records:
            tenant = record.tenant
            demand[tenant] = demand.get(tenant, 0.0) + record.gpus * self.durations[record.job_id]
            jobs[tenant] = jobs.get(tenant, 0) + 1
            if record.outcome == SUCCEEDED and record.end_time is not None:
                jct.setdefault(tenant, []).append(record.end_time - record.submit_time)
                delays.setdefault(tenant, []).append(record.queueing_seconds or 0.0)
        nominal = self.nominal_gpus
        received_total = sum(self.gpu_seconds.values()) or 1.0
        demand_total = sum(demand.values()) or 1.0
        nominal_total = sum(nominal.values()) or 1.0
        table: dict[str, dict[str, float]] = {}
        for tenant in sorted(demand):
            share = self.gpu_seconds.get(tenant, 0.0) / received_total
            entitled = nominal.get(tenant, 0) / nominal_total
            wanted = demand[tenant] / demand_total
            target = min(entitled, wanted)
            samples = self.contended_samples.get(tenant, 0)
            held = self.held_sum.get(tenant, 0.0)
            fair = self.fair_sum.get(tenant, 0.0)
            ordered = sorted(delays.get(tenant, []))
            table[tenant] = {
                "jobs": float(jobs[tenant]),
                "nominal_gpus": float(nominal.get(tenant, 0)),
                "avg_jct_seconds": _mean(jct.get(tenant, [])),
                "p50_queueing_delay_seconds": _percentile(ordered, 50),
                "p99_queueing_delay_seconds": _percentile(ordered, 99),
                "gpu_share": share,
                "entitlement": entitled,
                "demand_share": wanted,
                "fairness_ratio": share / target if target > 0 else 1.0,
                "entitlement_satisfaction": _mean(self.satisfaction.get(tenant, [1.0])),
                "held_gpus_avg": held / samples if samples else 0.0,
                "fair_gpus_avg": fair / samples if samples else 0.0,
                "received_vs_fair": held / fair if fair > 0 else (1.0 if held == 0 else 0.0),
                "lost_gpu_seconds": self.lost.get(tenant, 0.0),
            }
        return table


def _gang_waits(records: Sequence[JobRecord]) -> dict[str, dict[str, float]]:
    """Per gang-size bucket: jobs, longest and median wait (succeeded and failed jobs), and
    how many failed at the retry limit or never finished."""
    waits: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for record in records:
        bucket = gang_bucket(record.gpus)
        tally = counts.setdefault(bucket, [0, 0, 0])
        tally[0] += 1
        if record.queueing_seconds is not None:
            waits.setdefault(bucket, []).append(record.queueing_seconds)
        if record.reason == RETRY_LIMIT:
            tally[1] += 1
        if record.outcome == UNFINISHED:
            tally[2] += 1
    table: dict[str, dict[str, float]] = {}
    for label, _ in GANG_BUCKETS:
        if label not in counts:
            continue
        ordered = sorted(waits.get(label, []))
        jobs, retry_limit, unfinished = counts[label]
        table[label] = {
            "jobs": float(jobs),
            "max_wait_seconds": ordered[-1] if ordered else 0.0,
            "p50_wait_seconds": _percentile(ordered, 50),
            "failed_retry_limit": float(retry_limit),
            "unfinished": float(unfinished),
        }
    return table


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _percentile(ordered: Sequence[float], percent: float) -> float:
    if not ordered:
        return 0.0
    rank = min(len(ordered) - 1, max(0, math.ceil(percent / 100 * len(ordered)) - 1))
    return ordered[rank]


def simulate(
    trace_rows: Sequence[TraceRow],
    cluster: ClusterConfig,
    quotas: QuotaConfig,
    policy: Policy,
    *,
    policy_name: str | None = None,
    time_scale: float = 1.0,
    runtime_limit_factor: float = 1.0,
    window: int = 8,
    checkpoint_share: float = 0.0,
    checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
    progress: ProgressCallback | None = None,
    user_limits: UserLimits | None = None,
    estimate_starts: bool = False,
    prices: PriceTable | None = None,
) -> SimulationReport:
    """Replay ``trace_rows`` on ``cluster`` under ``quotas`` and ``policy``; ``user_limits``
    apply to every tenant's (single) user."""
    if time_scale <= 0 or window < 1 or runtime_limit_factor <= 0:
        raise ValueError("time_scale and runtime_limit_factor must be > 0 and window >= 1")
    if not 0 <= checkpoint_share <= 1:
        raise ValueError(f"checkpoint share must be between 0 and 1, got {checkpoint_share}")
    if checkpoint_interval < 1:
        raise ValueError(f"checkpoint interval must be >= 1 s, got {checkpoint_interval}")
    started = time.perf_counter()
    jobs, durations = jobs_from_trace(
        trace_rows,
        cluster,
        quotas,
        time_scale,
        runtime_limit_factor,
        checkpoint_share,
        checkpoint_interval,
    )
    controls = NO_CONTROLS
    if user_limits is not None:
        controls = QueueControls(user_limits=dict.fromkeys(quotas.tenants, user_limits))
    return simulate_jobs(
        jobs,
        durations,
        cluster,
        quotas,
        policy,
        policy_name=policy_name,
        window=window,
        progress=progress,
        controls=controls,
        started=started,
        estimate_starts=estimate_starts,
        prices=prices,
    )


def simulate_jobs(
    jobs: list[JobState],
    durations: dict[str, float],
    cluster: ClusterConfig,
    quotas: QuotaConfig,
    policy: Policy,
    *,
    policy_name: str | None = None,
    window: int = 8,
    progress: ProgressCallback | None = None,
    controls: QueueControls = NO_CONTROLS,
    started: float | None = None,
    estimate_starts: bool = False,
    prices: PriceTable | None = None,
) -> SimulationReport:
    """Replay ready-made jobs (with their true run times): what :func:`simulate` does once the
    trace is turned into jobs; jobs may carry dependencies and array limits."""
    started = time.perf_counter() if started is None else started
    simulation = _Simulation(
        jobs, durations, cluster, quotas, policy, window, controls, estimate_starts
    )
    simulation.run(progress)
    name = policy_name or (policy.kind + ("+backfill" if policy.backfill else ""))
    report = simulation.report(name, time.perf_counter() - started)
    if prices is not None:
        report.spend = spend_per_tenant(
            simulation.held, simulation.lost, simulation.tenant_flavor, quotas, prices
        )
    return report


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``yushan simulate`` options to ``parser``."""
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE, help="Philly-format CSV")
    parser.add_argument("--cluster", type=Path, default=DEFAULT_CLUSTER, help="cluster YAML")
    parser.add_argument("--quotas", type=Path, default=DEFAULT_QUOTAS, help="quota YAML")
    parser.add_argument("--policy", choices=POLICY_NAMES, default="fair+backfill")
    parser.add_argument("--limit-jobs", type=int, default=None, help="replay the first N jobs")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply submission times (below 1 compresses arrivals: more contention)",
    )
    parser.add_argument(
        "--runtime-limit-factor",
        type=float,
        default=1.0,
        help="max_runtime_seconds = ceil(run time x factor); below 1 jobs hit their limit",
    )
    parser.add_argument("--window", type=int, default=8, help="jobs per tenant and shape per cycle")
    parser.add_argument(
        "--checkpoint-share",
        type=float,
        default=0.0,
        metavar="F",
        help="share of jobs (0..1, chosen by a hash of the job id) that checkpoint (default 0)",
    )
    parser.add_argument(
        "--checkpoint-interval",
        type=int,
        default=DEFAULT_CHECKPOINT_INTERVAL,
        metavar="SECONDS",
        help="how often checkpointing jobs save their work (default %(default)s)",
    )
    parser.add_argument(
        "--user-max-gpus",
        type=int,
        default=None,
        metavar="N",
        help="per-user limit of GPUs in use (each tenant is one user in the trace)",
    )
    parser.add_argument(
        "--user-max-running-jobs",
        type=int,
        default=None,
        metavar="N",
        help="per-user limit of running jobs (each tenant is one user in the trace)",
    )
    parser.add_argument(
        "--estimate-starts",
        action="store_true",
        help="estimate each waiting job's start at its arrival and report the error",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="FILE",
        help="price list (the shape of PUT /v1/prices): adds the spend per tenant",
    )
    parser.add_argument(
        "-o",
        "--format",
        dest="format",
        choices=("table", "json"),
        default=None,
        help="table for people (default) or json",
    )
    parser.add_argument(
        "--output",
        dest="output_file",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the report as JSON to FILE",
    )
    parser.add_argument(
        "--jobs-out", type=Path, default=None, metavar="FILE", help="write one CSV row per job"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on standard error (default: when it is a terminal)",
    )


def _user_limits(args: argparse.Namespace) -> UserLimits | None:
    gpus, jobs = args.user_max_gpus, args.user_max_running_jobs
    for name, value in (("--user-max-gpus", gpus), ("--user-max-running-jobs", jobs)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if gpus is None and jobs is None:
        return None
    return UserLimits(max_gpus=gpus, max_running_jobs=jobs)


def run(args: argparse.Namespace) -> int:
    """Run ``yushan simulate``: print the report (table or JSON); exit code 2 on bad input."""
    from scheduler import simoutput

    # ``yushan -o json simulate``: the global ``-o`` of the client commands (dest ``output``)
    fmt = args.format or ("json" if getattr(args, "output", None) == "json" else "table")
    try:
        cluster = load_cluster(args.cluster)
        quotas = load_quotas(args.quotas)
        prices = load_prices(args.prices) if args.prices is not None else None
        rows = read_trace(args.trace, args.limit_jobs)
        show = args.progress if args.progress is not None else sys.stderr.isatty()
        with simoutput.progress_bar(sys.stderr, len(rows), enabled=show) as progress:
            report = simulate(
                rows,
                cluster,
                quotas,
                Policy.named(args.policy),
                policy_name=args.policy,
                time_scale=args.time_scale,
                runtime_limit_factor=args.runtime_limit_factor,
                window=args.window,
                checkpoint_share=args.checkpoint_share,
                checkpoint_interval=args.checkpoint_interval,
                progress=progress,
                user_limits=_user_limits(args),
                estimate_starts=args.estimate_starts,
                prices=prices,
            )
    except (SimulationInputError, ValueError) as error:
        print(f"yushan simulate: {error}", file=sys.stderr)
        return 2
    text = simoutput.report_json(report)
    if args.output_file is not None:
        args.output_file.write_text(text + "\n")
    if args.jobs_out is not None:
        simoutput.write_jobs_csv(report.records, args.jobs_out)
    try:
        if fmt == "json":
            print(text)
        else:
            simoutput.print_table(report, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `yushan simulate | head`: the reader left; the files are written
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stops the error at interpreter exit
    return 0
