"""Property-based tests: random clusters, quota trees and job streams through many cycles.

Each example drives the cycle the way the loop does: admitted jobs start, victims leave and are
requeued with backoff, jobs finish, new jobs arrive and time moves on. The invariants are checked
against the raw specifications with an independent, brute-force reading of Kueue's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.backoff import requeue_delay
from scheduler.cycle import run_cycle
from scheduler.model import (
    GPU,
    CohortSpec,
    CycleResult,
    JobState,
    PreemptionReason,
    Priority,
    QuotaLimits,
    Snapshot,
    TenantSpec,
)
from scheduler.policy import Policy
from scheduler.state import SchedulingState, job_request
from tests.scheduler.builders import FLAVOR, SnapshotBuilder, entries

FR = (FLAVOR, GPU)
PROFILE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class World:
    tenants: dict[str, TenantSpec]
    cohorts: dict[str, CohortSpec]
    builder: SnapshotBuilder
    arrivals: list[list[JobState]]
    finish_after: dict[str, float] = field(default_factory=dict)


@st.composite
def limits(draw: st.DrawFn, max_nominal: int) -> QuotaLimits:
    nominal = draw(st.integers(0, max_nominal))
    borrowing = draw(st.none() | st.integers(0, 12))
    lending = draw(st.none() | st.integers(0, nominal))
    return QuotaLimits(nominal, borrowing, lending)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    builder = SnapshotBuilder(now=100_000.0)
    cohort_count = draw(st.integers(1, 2))
    cohorts = {"root": CohortSpec("root", None)}
    for index in range(cohort_count):
        borrowing = draw(st.none() | st.integers(0, 8))
        quotas = {FR: QuotaLimits(0, borrowing, None)}
        cohorts[f"c{index}"] = CohortSpec(f"c{index}", "root", quotas)
    tenants = {}
    for index in range(draw(st.integers(2, 4))):
        name = f"t{index}"
        cohort = f"c{draw(st.integers(0, cohort_count - 1))}"
        weight = draw(st.sampled_from([0.5, 1.0, 2.0]))
        tenants[name] = TenantSpec(name, cohort, weight, {FR: draw(limits(16))})
    builder.nodes(draw(st.integers(1, 3)), gpus=draw(st.sampled_from([4, 8])))
    if draw(st.booleans()):
        builder.nodes(1, gpus=8, foreign_gpus=draw(st.integers(0, 8)))
    if draw(st.booleans()):
        builder.nodes(1, schedulable=False)
    job = st.tuples(
        st.sampled_from(sorted(tenants)),
        st.sampled_from([1, 1, 2, 4, 8]),
        st.integers(1, 2),
        st.sampled_from(list(Priority)),
        st.sampled_from(["u1", "u2"]),
        st.none() | st.sampled_from([600, 3600]),
    )
    arrivals: list[list[JobState]] = []
    counter = 0
    for _ in range(draw(st.integers(2, 5))):
        wave = []
        for tenant, gpus, workers, priority, user, limit in draw(st.lists(job, max_size=6)):
            counter += 1
            wave.append(
                builder.job(
                    f"j{counter}",
                    tenant,
                    gpus=gpus,
                    workers=workers,
                    priority=priority,
                    user=user,
                    submitted_at=float(counter),
                    max_runtime=limit,
                )
            )
        arrivals.append(wave)
    return World(tenants, cohorts, builder, arrivals)


# -- an independent reading of the quota rules -------------------------------------------


def _guaranteed(subtree: int, limits: QuotaLimits | None) -> int:
    if limits is None or limits.lending_limit is None:
        return 0
    return max(0, subtree - limits.lending_limit)


def quota_problems(world: World, running: list[JobState]) -> list[str]:
    usage = dict.fromkeys(world.tenants, 0)
    for job in running:
        usage[job.tenant] += job.total().gpu
    problems = []
    cohort_usage = dict.fromkeys(world.cohorts, 0)
    cohort_subtree = dict.fromkeys(world.cohorts, 0)
    for name, spec in world.tenants.items():
        q = spec.quotas[FR]
        if q.borrowing_limit is not None and usage[name] > q.nominal + q.borrowing_limit:
            problems.append(f"{name} above nominal + borrowing limit")
        kept = _guaranteed(q.nominal, q)
        assert spec.cohort is not None
        cohort_usage[spec.cohort] += max(0, usage[name] - kept)
        cohort_subtree[spec.cohort] += q.nominal - kept
    root_usage = 0
    root_pool = 0
    for name, cohort in world.cohorts.items():
        if cohort.parent is None:
            continue
        q = cohort.quotas[FR]
        if q.borrowing_limit is not None and cohort_usage[name] > cohort_subtree[name] + (
            q.borrowing_limit
        ):
            problems.append(f"cohort {name} above its borrowing limit")
        root_usage += cohort_usage[name]
        root_pool += cohort_subtree[name]
    if root_usage > root_pool:
        problems.append("lenders pushed below nominal - lending limit")
    return problems


def capacity_problems(snapshot: Snapshot, running: list[JobState]) -> list[str]:
    used = {n.name: n.foreign.gpu for n in snapshot.nodes}
    for job in running:
        assert job.placement is not None
        for name in job.placement:
            used[name] += job.demand.gpu
    return [n.name for n in snapshot.nodes if used[n.name] > n.allocatable.gpu]


# -- driving cycles like the loop --------------------------------------------------------


@dataclass
class Run:
    results: list[tuple[Snapshot, CycleResult]] = field(default_factory=list)
    evictions: set[tuple[str, str, PreemptionReason]] = field(default_factory=set)
    finishes: int = 0
    """Jobs that have finished so far: each one changes the shares evictions were judged by."""
    eviction_log: list[tuple[str, str, PreemptionReason, int]] = field(default_factory=list)
    """(preemptor, victim, reason, :attr:`finishes` when it happened)."""


def drive(world: World, policy: Policy, step: float = 400.0, settle: bool = False) -> Run:
    """Run cycles over the arrival waves; with ``settle`` everything arrives at once and no job
    finishes, so that only the cycle's own decisions change the situation."""
    if settle:
        world = replace(world, arrivals=[[j for wave in world.arrivals for j in wave]])
    base = world.builder.build()
    snapshot = replace(base, tenants=world.tenants, cohorts=world.cohorts, queued=(), running=())
    queued: dict[str, JobState] = {}
    running: dict[str, JobState] = {}
    run = Run()
    preempting: frozenset[str] = frozenset()
    for wave_index in range(len(world.arrivals) + 3):
        if wave_index < len(world.arrivals):
            queued.update((j.id, j) for j in world.arrivals[wave_index])
        snapshot = replace(
            snapshot,
            queued=tuple(queued.values()),
            running=tuple(running.values()),
            preempting=preempting,
        )
        result = run_cycle(snapshot, policy)
        run.results.append((snapshot, result))
        now = snapshot.now
        for admit in result.admitted:
            job = queued.pop(admit.job_id)
            running[job.id] = replace(job, placement=admit.placement, admitted_at=now)
        for failure in result.failed:
            running.pop(failure.job_id)
        for preemption in result.preempted:
            run.evictions.add((preemption.preemptor_id, preemption.job_id, preemption.reason))
            run.eviction_log.append(
                (preemption.preemptor_id, preemption.job_id, preemption.reason, run.finishes)
            )
            victim = running.pop(preemption.job_id)
            attempts = victim.attempts + 1
            delay = requeue_delay(attempts, policy)
            if delay is not None:
                queued[victim.id] = replace(
                    victim,
                    placement=None,
                    admitted_at=None,
                    attempts=attempts,
                    not_before=now + delay,
                )
        preempting = frozenset(p.preemptor_id for p in result.preempted)
        for job_id in [] if settle else sorted(running)[::3]:
            if running[job_id].admitted_at != now:
                del running[job_id]  # some jobs finish
                run.finishes += 1
        snapshot = replace(snapshot, now=now + step)
        assert not quota_problems(world, list(running.values())), result
        assert not capacity_problems(snapshot, list(running.values()))
    return run


POLICIES = st.sampled_from([Policy.named(n) for n in ("fifo", "fair", "fair+backfill")])


@PROFILE
@given(world=worlds(), policy=POLICIES)
def test_quotas_and_capacity_always_hold(world: World, policy: Policy) -> None:
    run = drive(world, policy)
    assert run.results


@PROFILE
@given(world=worlds())
def test_no_two_jobs_evict_each_other(world: World) -> None:
    """Kueue's fair-sharing rules: in a settled situation, no eviction is ever reversed."""
    policy = replace(Policy.named("fair"), min_runtime_seconds=0)
    run = drive(world, policy, step=100.0, settle=True)
    for preemptor, victim, _ in run.evictions:
        reversed_pairs = {(v, p) for p, v, _ in run.evictions}
        assert (preemptor, victim) not in reversed_pairs, run.evictions


@PROFILE
@given(world=worlds())
def test_fair_share_evictions_are_never_reversed(world: World) -> None:
    """While the same jobs run, no fair-share eviction is reversed by another. Once a job
    finishes, shares change and a reversal can be right by Kueue's rules: X (LessThanInitial
    Share) evicts Y's big job while Y also runs a small one; the small one finishes; Y's big
    job, back, now has the lower share and evicts X's (found by this test)."""
    policy = replace(Policy.named("fair"), min_runtime_seconds=0)
    fair_share = {
        (p, v, finishes)
        for p, v, reason, finishes in drive(world, policy, step=100.0).eviction_log
        if reason is PreemptionReason.FAIR_SHARE
    }
    for preemptor, victim, finishes in fair_share:
        assert (victim, preemptor, finishes) not in fair_share


@PROFILE
@given(world=worlds(), policy=st.sampled_from([Policy.named("fifo"), Policy.named("fair")]))
def test_work_conserving(world: World, policy: Policy) -> None:
    """A waiting job that would fit quota and capacity after the cycle's admissions is a bug."""
    for snapshot, result in drive(world, policy).results:
        if result.preempted:
            continue  # a preemptor holds nodes for the rest of the cycle
        by_id = {j.id: j for j in snapshot.queued}
        started = [
            replace(by_id[a.job_id], placement=a.placement, admitted_at=snapshot.now)
            for a in result.admitted
        ]
        state = SchedulingState(
            snapshot.tenants,
            snapshot.cohorts,
            snapshot.nodes,
            [*snapshot.running, *started],
            policy.topology_label,
        )
        for waiting in entries(result):
            if waiting.reason not in ("QuotaExceeded", "InsufficientCapacity"):
                continue
            job = by_id[waiting.job_id]
            fits_quota = state.tree.fits(job.tenant, job_request(job))
            placement = state.cluster.place(job.flavor, job.workers, job.demand)
            assert not (fits_quota and placement is not None), waiting


@PROFILE
@given(
    nominals=st.lists(st.integers(1, 8), min_size=2, max_size=4),
    borrower_jobs=st.integers(1, 40),
    wanted=st.integers(1, 8),
)
def test_tenant_under_nominal_gets_its_gpus_back(
    nominals: list[int], borrower_jobs: int, wanted: int
) -> None:
    """Within one cycle after the minimum runtime the victims are chosen, in the next it starts."""
    policy = Policy.named("fair")
    capacity_nodes = -(-sum(nominals) // 8)
    builder = SnapshotBuilder(now=100_000.0).nodes(capacity_nodes)
    for index, nominal in enumerate(nominals):
        builder.tenant(f"t{index}", gpu=nominal)
    free = capacity_nodes * 8
    for index in range(min(borrower_jobs, free)):
        builder.running(f"b{index}", "t1", gpus=1, started_ago=policy.min_runtime_seconds)
    claim = min(wanted, nominals[0])
    snapshot = builder.queued("claim", "t0", gpus=1, workers=claim).build()
    first = run_cycle(snapshot, policy)
    if first.admitted:
        assert [a.job_id for a in first.admitted] == ["claim"]
        return
    assert first.preempted, first.pending
    gone = {p.job_id for p in first.preempted}
    after = replace(
        snapshot,
        running=tuple(j for j in snapshot.running if j.id not in gone),
        preempting=frozenset({"claim"}),
    )
    assert [a.job_id for a in run_cycle(after, policy).admitted] == ["claim"]
