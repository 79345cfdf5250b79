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

Evicted jobs lose their progress and go back to the queue after the policy's backoff. The report
covers job completion time, queueing delay (completion time minus run time), makespan, GPU
utilisation, each tenant's share of GPU time against its entitlement (nominal share) and demand,
fairness, preemptions and quota violations (which must be 0). Fairness is sampled hourly while
some tenant waits: each tenant that wants GPUs should hold ``min(demand, nominal)`` of them; the
report gives each tenant's average satisfaction and the average Jain's index over tenants.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from quotas.decay import decay
from scheduler.backoff import requeue_delay
from scheduler.cycle import schedule
from scheduler.model import GPU, CycleResult, Demand, JobState, Priority, UsageState
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
from scheduler.state import SchedulingState

DEFAULT_TRACE = Path("../shared/data/philly/philly.csv")
DEFAULT_CLUSTER = Path("examples/philly/cluster.yaml")
DEFAULT_QUOTAS = Path("examples/philly/quotas.yaml")
MAX_ROUNDS_PER_INSTANT = 64
FAIRNESS_SAMPLE_SECONDS = 3600.0

_FINISH, _DEADLINE, _WAKE = 0, 1, 2


@dataclass(slots=True)
class SimulationReport:
    policy: str
    jobs: int
    completed: int
    failed: int
    unfinished: int
    avg_jct_seconds: float
    p50_jct_seconds: float
    p99_jct_seconds: float
    avg_queueing_delay_seconds: float
    p99_queueing_delay_seconds: float
    makespan_seconds: float
    gpu_utilisation: float
    jain_fairness: float
    preemptions: int
    quota_violations: int
    capacity_violations: int
    cycles: int
    wall_seconds: float
    tenants: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _shape_of(gpus: int, per_node: int) -> tuple[int, int]:
    """(workers, GPUs per worker) for a job of ``gpus`` GPUs on nodes of ``per_node``."""
    if gpus <= per_node:
        return 1, gpus
    workers = math.ceil(gpus / per_node)
    if gpus % workers == 0:
        return workers, gpus // workers
    return gpus, 1


def jobs_from_trace(
    rows: Sequence[TraceRow],
    cluster: ClusterConfig,
    quotas: QuotaConfig,
    time_scale: float = 1.0,
    runtime_limit_factor: float = 1.0,
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
    ) -> None:
        self.policy = policy
        self.window = window
        self.durations = durations
        self.pending_arrivals = sorted(jobs, key=lambda j: (j.submitted_at, j.id))
        self.next_arrival = 0
        self.total_gpus = sum(n.allocatable.gpu for n in cluster.nodes)
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
        self.failed: set[str] = set()
        self.gpu_seconds: dict[str, float] = {}
        self.preemptions = 0
        self.quota_violations = 0
        self.capacity_violations = 0
        self.cycles = 0
        self.nominal_gpus = {
            name: sum(q.nominal for (_, r), q in spec.quotas.items() if r == GPU)
            for name, spec in quotas.tenants.items()
        }
        self.waiting_gpus: dict[str, int] = {}
        self.next_sample: float | None = None
        self.jain_samples: list[float] = []
        self.satisfaction: dict[str, list[float]] = {}

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
                self.finished[job_id] = now
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
            self._enqueue(arrival)
            self._add_waiting(arrival, 1)
            self.next_arrival += 1
        return freed, overdue

    def _stop(self, job_id: str, now: float) -> JobState:
        job = self.state.stop(job_id)
        gpus = job.total().gpu
        self.in_use[job.tenant] = self.in_use.get(job.tenant, 0) - gpus
        started = job.admitted_at or now
        self.gpu_seconds[job.tenant] = self.gpu_seconds.get(job.tenant, 0.0) + gpus * (
            now - started
        )
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
                self.state, queued, now, self.policy, usage, preempting, explain_all=False
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
            duration = self.durations[job.id]
            limit = job.max_runtime_seconds
            if limit is not None and limit < duration:
                self._push(now + limit, _DEADLINE, job.id)
            else:
                self._push(now + duration, _FINISH, job.id)
        for failure in result.failed:
            if failure.job_id in self.state.running:
                self._stop(failure.job_id, now)
                self.failed.add(failure.job_id)
        for preemption in result.preempted:
            if preemption.job_id in self.state.running:
                self._requeue(self._stop(preemption.job_id, now), now)
                self.preemptions += 1
        exhausted = any(
            count >= self.window and self.lanes[lane] for lane, count in started_lanes.items()
        )
        return bool(result.preempted) or bool(result.failed) or exhausted

    def _requeue(self, job: JobState, now: float) -> None:
        attempts = job.attempts + 1
        delay = requeue_delay(attempts, self.policy)
        if delay is None:
            self.failed.add(job.id)
            return
        queued = replace(
            job, placement=None, admitted_at=None, attempts=attempts, not_before=now + delay
        )
        self.waiting[job.id] = queued
        self._add_waiting(queued, 1)
        self._push(now + delay, _WAKE, job.id)

    def _add_waiting(self, job: JobState, sign: int) -> None:
        self.waiting_gpus[job.tenant] = self.waiting_gpus.get(job.tenant, 0) + sign * (
            job.demand.gpu * job.workers
        )

    def _sample_fairness(self, now: float) -> None:
        """Hourly: how well tenants that want GPUs get ``min(demand, nominal)`` of them.

        Only instants with contention (some tenant waiting) count. A tenant's satisfaction is
        ``min(1, in use / min(demand, nominal))``; Jain's index is taken over those values.
        """
        if self.next_sample is not None and now < self.next_sample:
            return
        self.next_sample = now + FAIRNESS_SAMPLE_SECONDS
        if not any(g > 0 for g in self.waiting_gpus.values()):
            return
        values = []
        for tenant, nominal in self.nominal_gpus.items():
            in_use = self.in_use.get(tenant, 0)
            target = min(in_use + self.waiting_gpus.get(tenant, 0), nominal)
            if target > 0:
                satisfied = min(1.0, in_use / target)
                values.append(satisfied)
                self.satisfaction.setdefault(tenant, []).append(satisfied)
        if values:
            self.jain_samples.append(_jain(values))

    def run(self) -> None:
        while True:
            now = self._next_time()
            if now is None:
                return
            self._advance_usage(now)
            self._run_cycles(now, *self._apply_events(now))
            self._sample_fairness(now)

    # -- report ----------------------------------------------------------------------------

    def report(self, policy_name: str, quotas: QuotaConfig, wall: float) -> SimulationReport:
        jct = sorted(self.finished[j] - self.submitted[j] for j in self.finished)
        delays = sorted(
            max(0.0, self.finished[j] - self.submitted[j] - self.durations[j])
            for j in self.finished
        )
        first = min(self.submitted.values(), default=0.0)
        makespan = max(self.finished.values(), default=first) - first
        used = sum(self.gpu_seconds.values())
        tenants = self._tenant_table(quotas)
        return SimulationReport(
            policy=policy_name,
            jobs=len(self.submitted),
            completed=len(self.finished),
            failed=len(self.failed),
            unfinished=len(self.submitted) - len(self.finished) - len(self.failed),
            avg_jct_seconds=_mean(jct),
            p50_jct_seconds=_percentile(jct, 50),
            p99_jct_seconds=_percentile(jct, 99),
            avg_queueing_delay_seconds=_mean(delays),
            p99_queueing_delay_seconds=_percentile(delays, 99),
            makespan_seconds=makespan,
            gpu_utilisation=used / (self.total_gpus * makespan) if makespan > 0 else 0.0,
            jain_fairness=_mean(self.jain_samples) if self.jain_samples else 1.0,
            preemptions=self.preemptions,
            quota_violations=self.quota_violations,
            capacity_violations=self.capacity_violations,
            cycles=self.cycles,
            wall_seconds=wall,
            tenants=tenants,
        )

    def _tenant_table(self, quotas: QuotaConfig) -> dict[str, dict[str, float]]:
        """Per tenant: share of GPU time received, entitled (nominal) and demanded (trace)."""
        demand: dict[str, float] = {}
        jobs: dict[str, int] = {}
        jct: dict[str, list[float]] = {}
        for job in self.pending_arrivals:
            gpus = job.total().gpu * self.durations[job.id]
            demand[job.tenant] = demand.get(job.tenant, 0.0) + gpus
            jobs[job.tenant] = jobs.get(job.tenant, 0) + 1
            if job.id in self.finished:
                completion = self.finished[job.id] - job.submitted_at
                jct.setdefault(job.tenant, []).append(completion)
        nominal = {
            name: sum(q.nominal for (_, r), q in spec.quotas.items() if r == GPU)
            for name, spec in quotas.tenants.items()
        }
        received_total = sum(self.gpu_seconds.values()) or 1.0
        demand_total = sum(demand.values()) or 1.0
        nominal_total = sum(nominal.values()) or 1.0
        table: dict[str, dict[str, float]] = {}
        for tenant in sorted(demand):
            share = self.gpu_seconds.get(tenant, 0.0) / received_total
            entitled = nominal.get(tenant, 0) / nominal_total
            wanted = demand[tenant] / demand_total
            target = min(entitled, wanted)
            table[tenant] = {
                "jobs": float(jobs[tenant]),
                "avg_jct_seconds": _mean(jct.get(tenant, [])),
                "gpu_share": share,
                "entitlement": entitled,
                "demand_share": wanted,
                "fairness_ratio": share / target if target > 0 else 1.0,
                "entitlement_satisfaction": _mean(self.satisfaction.get(tenant, [1.0])),
            }
        return table


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _percentile(ordered: Sequence[float], percent: float) -> float:
    if not ordered:
        return 0.0
    rank = min(len(ordered) - 1, max(0, math.ceil(percent / 100 * len(ordered)) - 1))
    return ordered[rank]


def _jain(values: Iterable[float]) -> float:
    """Jain's fairness index: 1 when all values are equal, 1/n when one value holds everything."""
    xs = [min(x, 1.0) for x in values]
    squares = sum(x * x for x in xs)
    return (sum(xs) ** 2) / (len(xs) * squares) if squares > 0 else 1.0


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
) -> SimulationReport:
    """Replay ``trace_rows`` on ``cluster`` under ``quotas`` and ``policy``."""
    if time_scale <= 0 or window < 1 or runtime_limit_factor <= 0:
        raise ValueError("time_scale and runtime_limit_factor must be > 0 and window >= 1")
    started = time.perf_counter()
    jobs, durations = jobs_from_trace(trace_rows, cluster, quotas, time_scale, runtime_limit_factor)
    simulation = _Simulation(jobs, durations, cluster, quotas, policy, window)
    simulation.run()
    name = policy_name or (policy.kind + ("+backfill" if policy.backfill else ""))
    return simulation.report(name, quotas, time.perf_counter() - started)


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
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")


def run(args: argparse.Namespace) -> int:
    """Run ``yushan simulate``: print the report as JSON; exit code 2 on bad input."""
    try:
        cluster = load_cluster(args.cluster)
        quotas = load_quotas(args.quotas)
        rows = read_trace(args.trace, args.limit_jobs)
        report = simulate(
            rows,
            cluster,
            quotas,
            Policy.named(args.policy),
            policy_name=args.policy,
            time_scale=args.time_scale,
            runtime_limit_factor=args.runtime_limit_factor,
            window=args.window,
        )
    except (SimulationInputError, ValueError) as error:
        print(f"yushan simulate: {error}", file=sys.stderr)
        return 2
    text = json.dumps(report.as_dict(), indent=2, sort_keys=True)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0
