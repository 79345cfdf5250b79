"""Property: per-user limits and array parallelism hold in every cycle.

Random clusters, quota trees and job streams (the worlds of :mod:`test_properties`) are driven
through many cycles the way the loop drives them, with random per-user limits (tenant defaults
and overrides) and some jobs in arrays; after every cycle, no user runs more jobs or GPUs than
their limit and no array more tasks than its parallelism. The simulator is checked the same way
on the intervals its job records report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from scheduler.model import JobState, QueueControls, UserLimits
from scheduler.policy import Policy
from scheduler.simconfig import cluster_from_mapping, quotas_from_mapping
from scheduler.simulate import simulate_jobs
from tests.scheduler.builders import SnapshotBuilder, demand
from tests.scheduler.test_properties import POLICIES, PROFILE, World, drive, worlds

USERS = ("u1", "u2")


@st.composite
def user_limits(draw: st.DrawFn) -> UserLimits:
    return UserLimits(
        max_gpus=draw(st.none() | st.integers(0, 12)),
        max_running_jobs=draw(st.none() | st.integers(0, 3)),
    )


@st.composite
def controls(draw: st.DrawFn, tenants: list[str]) -> QueueControls:
    defaults = {t: draw(user_limits()) for t in tenants if draw(st.booleans())}
    overrides = {(t, u): draw(user_limits()) for t in tenants for u in USERS if draw(st.booleans())}
    return QueueControls(user_limits=defaults, user_overrides=overrides)


def in_arrays(world: World, data: st.DataObject) -> World:
    """Put some jobs of each wave into a two-task-at-a-time array."""
    waves = [
        [
            replace(j, array_id=f"a-{j.tenant}", array_parallelism=2)
            if data.draw(st.booleans())
            else j
            for j in wave
        ]
        for wave in world.arrivals
    ]
    return replace(world, arrivals=waves)


def over_limits(running: list[JobState], controls: QueueControls) -> list[str]:
    jobs: Counter[tuple[str, str]] = Counter()
    gpus: Counter[tuple[str, str]] = Counter()
    tasks: Counter[str] = Counter()
    parallelism: dict[str, int] = {}
    for job in running:
        jobs[(job.tenant, job.user)] += 1
        gpus[(job.tenant, job.user)] += job.total().gpu
        if job.array_id is not None and job.array_parallelism is not None:
            tasks[job.array_id] += 1
            parallelism[job.array_id] = job.array_parallelism
    problems = []
    for key in jobs:
        limits = controls.limits_for(*key)
        if limits.max_running_jobs is not None and jobs[key] > limits.max_running_jobs:
            problems.append(f"{key} runs {jobs[key]} jobs > {limits.max_running_jobs}")
        if limits.max_gpus is not None and gpus[key] > limits.max_gpus:
            problems.append(f"{key} uses {gpus[key]} GPUs > {limits.max_gpus}")
    problems += [f"array {a} runs {n}" for a, n in tasks.items() if n > parallelism[a]]
    return problems


@PROFILE
@given(data=st.data(), policy=POLICIES)
def test_no_user_ever_runs_more_than_their_limits(data: st.DataObject, policy: Policy) -> None:
    world = data.draw(worlds())
    world = in_arrays(world, data)
    limits = data.draw(controls(sorted(world.tenants)))
    world.builder.controls(limits)
    run = drive(world, policy)
    assert run.results
    for snapshot, result in run.results:
        by_id = {j.id: j for j in snapshot.queued}
        running = [*snapshot.running, *(by_id[a.job_id] for a in result.admitted)]
        assert not over_limits(running, limits), (limits, result)


# -- the simulator ------------------------------------------------------------------------------

CLUSTER = cluster_from_mapping({"node_groups": [{"flavor": "a100", "count": 2, "gpus": 8}]})
QUOTAS = quotas_from_mapping(
    {
        "cohorts": [{"name": "root"}],
        "tenants": [
            {"name": name, "cohort": "root", "quotas": [{"flavor": "a100", "nominal": 8}]}
            for name in ("t0", "t1")
        ],
    }
)


def peak_overlap(intervals: list[tuple[float, float, int]]) -> tuple[int, int]:
    """Most jobs and most GPUs running at once over [start, end) intervals."""
    events = sorted(
        [(start, 1, gpus) for start, _, gpus in intervals]
        + [(end, -1, -gpus) for _, end, gpus in intervals]
    )
    jobs = gpus = peak_jobs = peak_gpus = 0
    for _, step, amount in events:  # ends sort before starts at the same instant
        jobs += step
        gpus += amount
        peak_jobs, peak_gpus = max(peak_jobs, jobs), max(peak_gpus, gpus)
    return peak_jobs, peak_gpus


@PROFILE
@given(
    stream=st.lists(
        st.tuples(
            st.sampled_from(["t0", "t1"]),
            st.sampled_from([1, 2, 4]),
            st.integers(1, 3),
            st.floats(10, 500),
            st.booleans(),
        ),
        min_size=1,
        max_size=30,
    ),
    limits=user_limits(),
)
def test_the_simulator_honours_user_limits_and_arrays(
    stream: list[tuple[str, int, int, float, bool]], limits: UserLimits
) -> None:
    builder = SnapshotBuilder()
    jobs = []
    durations = {}
    for index, (tenant, gpus, gap, duration, arrayed) in enumerate(stream):
        job = builder.job(
            f"j{index}", tenant, gpus=gpus, user=tenant, submitted_at=float(index * gap)
        )
        job = replace(job, demand=demand(gpus), max_runtime_seconds=10_000)
        if arrayed:
            job = replace(job, array_id=f"arr-{tenant}", array_parallelism=1)
        jobs.append(job)
        durations[job.id] = duration
    controls = QueueControls(user_limits=dict.fromkeys(("t0", "t1"), limits))
    report = simulate_jobs(
        jobs, durations, CLUSTER, QUOTAS, Policy.named("fifo"), controls=controls
    )
    by_id = {j.id: j for j in jobs}
    for tenant in ("t0", "t1"):
        started = [r for r in report.records if r.tenant == tenant and r.start_time is not None]
        ran = [(r.start_time or 0.0, r.end_time or 1e18, r.gpus) for r in started]
        peak_jobs, peak_gpus = peak_overlap(ran)
        if limits.max_running_jobs is not None:
            assert peak_jobs <= limits.max_running_jobs
        if limits.max_gpus is not None:
            assert peak_gpus <= limits.max_gpus
        in_array = [x for r, x in zip(started, ran, strict=True) if by_id[r.job_id].array_id]
        assert peak_overlap(in_array)[0] <= 1
    blocked = (limits.max_running_jobs == 0) or (
        limits.max_gpus is not None and limits.max_gpus < 1
    )
    if not blocked and (limits.max_gpus is None or limits.max_gpus >= 4):
        assert report.completed == report.jobs
