"""The long-lived scheduling state keeps its derived indexes true as jobs start and stop."""

from __future__ import annotations

import random
from dataclasses import replace

from scheduler.backfill import reserve
from scheduler.state import SchedulingState
from tests.scheduler.builders import FLAVOR, SnapshotBuilder


def rebuilt_releases(state: SchedulingState, flavor: str) -> list[tuple[float, str, int, str]]:
    return sorted(
        (job.admitted_at + job.max_runtime_seconds, name, job.demand.gpu, job.id)
        for job in state.running_on(flavor)
        if job.admitted_at is not None and job.max_runtime_seconds is not None
        for name in job.placement or ()
    )


def test_release_events_follow_starts_and_stops_in_order() -> None:
    """Jobs with and without time limits, gangs over two nodes, started and stopped at random:
    the events a reservation reads are always those of the running jobs, soonest first."""
    rng = random.Random(4)
    builder = SnapshotBuilder().tenant("a", gpu=64).nodes(8)
    snapshot = builder.build()
    state = SchedulingState(
        snapshot.tenants, snapshot.cohorts, snapshot.nodes, (), "topology.yushan.io/block"
    )
    flavor = FLAVOR
    for index in range(300):
        if state.running and rng.random() < 0.45:
            state.stop(rng.choice(sorted(state.running)))
        else:
            gpus, workers = rng.choice([(1, 1), (2, 1), (4, 1), (8, 2)])
            limit = rng.choice([None, 600, 3600, 7200])
            job = builder.job(f"j{index}", "a", gpus=gpus, workers=workers, max_runtime=limit)
            placement = state.cluster.place(job.flavor, job.workers, job.demand)
            if placement is None:
                continue
            state.start(replace(job, placement=placement, admitted_at=float(rng.randrange(100))))
        assert state.node_releases(flavor) == rebuilt_releases(state, flavor)


def test_a_reservation_waits_for_releases_on_open_nodes_only() -> None:
    """Two full nodes: one frees up in 1 h, the other in 2 h. An 8-GPU job is reserved the
    first; with that node closed (its GPUs promised elsewhere) it must wait for the second."""
    hour = 3600
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=64)
        .nodes(2)
        .running("soon", "a", gpus=8, started_ago=0, max_runtime=hour)
        .running("later", "a", gpus=8, started_ago=0, max_runtime=2 * hour)
        .queued("head", "a", gpus=8)
        .build()
    )
    state = SchedulingState(
        snapshot.tenants, snapshot.cohorts, snapshot.nodes, snapshot.running, "block"
    )
    head, now = snapshot.queued[0], snapshot.now
    flavor = head.flavor
    releases = state.node_releases(flavor)
    assert reserve(head, state.free_gpus_by_node(flavor), releases, now).start_at == now + hour
    (soon_node,) = state.running["soon"].placement or ()
    state.cluster.close(soon_node)
    free = state.cluster.free_gpus_by_node(flavor)
    assert reserve(head, free, releases, now).start_at == now + 2 * hour


def test_release_events_of_a_snapshot_are_sorted_from_the_start() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=64)
        .nodes(4)
        .running("late", "a", gpus=8, started_ago=0, max_runtime=7200)
        .running("early", "a", gpus=4, started_ago=0, max_runtime=600)
        .running("endless", "a", gpus=4, started_ago=0)
        .running("gang", "a", gpus=8, workers=2, started_ago=0, max_runtime=3600)
        .build()
    )
    state = SchedulingState(
        snapshot.tenants, snapshot.cohorts, snapshot.nodes, snapshot.running, "block"
    )
    events = state.node_releases(FLAVOR)
    assert events == rebuilt_releases(state, FLAVOR)
    assert [job_id for *_, job_id in events] == ["early", "gang", "gang", "late"]
