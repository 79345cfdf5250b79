"""Preemption that counts its cost and follows Kueue's rules per candidate (issue 9).

Each test is a small cluster whose right answer is worked out in its docstring.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from scheduler.cycle import run_cycle, schedule
from scheduler.model import CycleResult, PreemptionReason, Priority
from scheduler.policy import Policy
from scheduler.state import SchedulingState
from tests.scheduler.builders import SnapshotBuilder

FAIR = Policy.named("fair")
BACKFILL = Policy.named("fair+backfill")
HOUR = 3600.0


def victims(result: CycleResult) -> list[str]:
    return sorted(p.job_id for p in result.preempted)


def test_fair_sharing_rule_is_judged_per_candidate_job() -> None:
    """B borrows 8 of its 10 GPUs: an 8-GPU job started 10 min ago (least work lost, so tried
    first) and two 1-GPU jobs that ran 10 h. A asks for one borrowed GPU: DRS(A with W) = 62.5.
    Without its 8-GPU job B's DRS falls to 0 < 62.5, so LessThanOrEqualToFinalShare refuses that
    candidate; without one 1-GPU job it is 437.5 >= 62.5: Kueue evicts one 1-GPU job."""
    snapshot = (
        SnapshotBuilder()
        .tenant("A", gpu=2)
        .tenant("B", gpu=2)
        .tenant("C", gpu=12)
        .nodes(2)
        .running("b-big", "B", gpus=8, started_ago=600)
        .running("b-s1", "B", gpus=1, started_ago=10 * HOUR)
        .running("b-s2", "B", gpus=1, started_ago=10 * HOUR)
        .running("a-run", "A", gpus=2)
        .running("c-run", "C", gpus=4)
        .queued("W", "A", gpus=1)
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    assert victims(result) in (["b-s1"], ["b-s2"])
    assert result.preempted[0].reason is PreemptionReason.FAIR_SHARE


def test_reclaim_takes_from_the_borrower_with_the_highest_share_first() -> None:
    """A is within its nominal quota with its new job; B borrows 4 (DRS 250), C borrows 2
    (DRS 125). C's jobs started later (less work lost), yet the victim is one of B's."""
    snapshot = (
        SnapshotBuilder()
        .tenant("A", gpu=8)
        .tenant("B", gpu=4)
        .tenant("C", gpu=4)
        .nodes(2)
        .running("a0", "A", gpus=2)
        .running("b0", "B", gpus=2, started_ago=5 * HOUR)
        .running("b1", "B", gpus=2, started_ago=5 * HOUR)
        .running("b2", "B", gpus=2, started_ago=5 * HOUR)
        .running("b3", "B", gpus=2, started_ago=5 * HOUR)
        .running("c0", "C", gpus=2, started_ago=HOUR)
        .running("c1", "C", gpus=2, started_ago=HOUR)
        .running("c2", "C", gpus=2, started_ago=HOUR)
        .queued("claim", "A", gpus=2)
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    (victim,) = victims(result)
    assert victim.startswith("b")
    assert result.preempted[0].reason is PreemptionReason.RECLAIM_NOMINAL


def reclaim_case(victim_ran: float, others_end_in: float) -> SnapshotBuilder:
    """One node: B borrows it all with one 8-GPU job; A (nominal 8) wants 8 GPUs."""
    return (
        SnapshotBuilder()
        .tenant("A", gpu=8)
        .tenant("B", gpu=0)
        .nodes(1)
        .running(
            "b", "B", gpus=8, started_ago=victim_ran, max_runtime=int(victim_ran + others_end_in)
        )
        .queued("a", "A", gpus=8)
    )


@pytest.mark.parametrize(
    ("victim_ran", "ends_in", "evicts"),
    [
        (1 * HOUR, 10 * HOUR, True),  # 8 GPU-h lost < 80 GPU-h of waiting
        (10 * HOUR, 1 * HOUR, False),  # 80 GPU-h lost > 8 GPU-h of waiting: wait instead
        (2 * HOUR, 2 * HOUR - 60, False),  # just cheaper to wait
    ],
)
def test_eviction_only_when_waiting_costs_more_than_the_lost_work(
    victim_ran: float, ends_in: float, evicts: bool
) -> None:
    result = run_cycle(reclaim_case(victim_ran, ends_in).build(), FAIR)
    assert (victims(result) == ["b"]) is evicts


def test_without_time_limits_waiting_is_unbounded_so_reclaim_proceeds() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("A", gpu=8)
        .tenant("B", gpu=0)
        .nodes(1)
        .running("b", "B", gpus=8, started_ago=100 * HOUR)
        .queued("a", "A", gpus=8)
        .build()
    )
    assert victims(run_cycle(snapshot, FAIR)) == ["b"]


def test_checkpointing_victims_lose_less_and_go_first() -> None:
    """Both ran 5 h on 4 GPUs; the one that checkpoints every 30 min loses at most 30 min."""
    snapshot = (
        SnapshotBuilder()
        .tenant("A", gpu=8)
        .tenant("B", gpu=0)
        .nodes(1)
        .running("plain", "B", gpus=4, started_ago=5 * HOUR + 600)
        .running("saves", "B", gpus=4, started_ago=5 * HOUR + 600, checkpoint=1800)
        .queued("a", "A", gpus=4)
        .build()
    )
    assert victims(run_cycle(snapshot, FAIR)) == ["saves"]


def test_a_job_evicted_too_often_today_is_not_a_victim() -> None:
    builder = (
        SnapshotBuilder().tenant("A", gpu=8).tenant("B", gpu=0).nodes(1).queued("a", "A", gpus=8)
    )
    now = builder.now
    thrashed = (now - 20 * HOUR, now - 10 * HOUR, now - 5 * HOUR)
    capped = builder.running(
        "b", "B", gpus=8, started_ago=2 * HOUR, evicted_at=thrashed, attempts=3
    )
    policy = replace(FAIR, min_runtime_seconds=60)
    assert victims(run_cycle(capped.build(), policy)) == []
    loose = replace(policy, max_evictions_per_day=4)
    assert victims(run_cycle(capped.build(), loose)) == ["b"]


def test_a_capped_job_becomes_a_victim_once_an_eviction_leaves_the_day() -> None:
    """One long-lived state asked twice (as the simulator does): three evictions in the last
    24 h protect b now; 5 h later the oldest (20 h ago) has left the window and b may go. What
    the state remembers about b's protection must not outlive that."""
    builder = (
        SnapshotBuilder().tenant("A", gpu=8).tenant("B", gpu=0).nodes(1).queued("a", "A", gpus=8)
    )
    now = builder.now
    thrashed = (now - 20 * HOUR, now - 10 * HOUR, now - 5 * HOUR)
    snapshot = builder.running(
        "b", "B", gpus=8, started_ago=2 * HOUR, evicted_at=thrashed, attempts=3
    ).build()
    policy = replace(FAIR, min_runtime_seconds=60)
    state = SchedulingState(
        snapshot.tenants, snapshot.cohorts, snapshot.nodes, snapshot.running, policy.topology_label
    )
    first = schedule(state, snapshot.queued, now, policy, snapshot.usage, explain_all=False)
    assert victims(first.result) == []
    later = schedule(
        state, snapshot.queued, now + 5 * HOUR, policy, snapshot.usage, explain_all=False
    )
    assert victims(later.result) == ["b"]


@pytest.mark.parametrize(
    ("mode", "evicts"), [("Never", False), ("LowerPriority", False), ("Any", True)]
)
def test_reclaim_within_cohort_modes(mode: str, evicts: bool) -> None:
    """The borrower's job has the same priority as the claimant's."""
    snapshot = reclaim_case(HOUR, 10 * HOUR).build()
    policy = replace(FAIR, reclaim_within_cohort=mode)  # type: ignore[arg-type]
    assert (victims(run_cycle(snapshot, policy)) == ["b"]) is evicts


@pytest.mark.parametrize(
    ("mode", "evicts"), [("Never", False), ("LowerPriority", True), ("Any", True)]
)
def test_within_tenant_modes(mode: str, evicts: bool) -> None:
    from scheduler.model import Priority

    snapshot = (
        SnapshotBuilder()
        .tenant("A", gpu=8)
        .nodes(1)
        .running("low", "A", gpus=8, priority=Priority.LOW)
        .queued("high", "A", gpus=8, priority=Priority.HIGH)
        .build()
    )
    policy = replace(FAIR, within_tenant=mode)  # type: ignore[arg-type]
    assert (victims(run_cycle(snapshot, policy)) == ["low"]) is evicts


def test_a_reserved_gang_gets_whole_nodes_and_others_use_the_rest() -> None:
    """Two nodes: one holds a 4-GPU job ending in 1 h, the other an 8-GPU job ending in 10 h.
    The 8-GPU head is reserved the first node in 1 h. A long 4-GPU job may not take that node's
    free half, but a short one may; an unreserved node is anyone's."""
    base = (
        SnapshotBuilder()
        .tenant("a", gpu=64)
        .nodes(2)
        .running("r-short", "a", gpus=4, started_ago=0, max_runtime=int(HOUR))
        .running("r-long", "a", gpus=8, started_ago=0, max_runtime=int(10 * HOUR))
        .queued("head", "a", gpus=8, submitted_at=1.0)
    )
    blocked = base.queued("long", "a", gpus=4, submitted_at=2.0, max_runtime=int(5 * HOUR))
    result = run_cycle(blocked.build(), BACKFILL)
    assert victims(result) == []
    assert {a.job_id for a in result.admitted} == set()
    short = base.queued("short", "a", gpus=4, submitted_at=3.0, max_runtime=int(HOUR / 2))
    assert {a.job_id for a in run_cycle(short.build(), BACKFILL).admitted} >= {"short"}


def three_borrowers(a_gpus: int, b_gpus: int, c_gpus: int) -> SnapshotBuilder:
    """A and B (nominal 2) and C (nominal 12) on two nodes, each with one long-running job;
    A asks for one more GPU."""
    return (
        SnapshotBuilder()
        .tenant("A", gpu=2)
        .tenant("B", gpu=2)
        .tenant("C", gpu=12)
        .nodes(2)
        .running("a0", "A", gpus=a_gpus, started_ago=10 * HOUR)
        .running("b0", "B", gpus=b_gpus, started_ago=10 * HOUR)
        .running("c0", "C", gpus=c_gpus, started_ago=10 * HOUR)
        .queued("W", "A", gpus=1)
    )


def test_a_borrower_above_every_other_share_is_refused_and_asked_again_once_shares_move() -> None:
    """A borrows 6 (DRS 300) and asks for one more GPU; B borrows 2 (DRS 100): neither
    fair-sharing rule lets A evict B, A has nothing of lower priority, so no search can
    succeed. The refusal is remembered with nothing to revisit in time (it depends only on
    what runs). Once B holds more than A (A's jobs stopped, B's grown), A may evict B."""
    builder = three_borrowers(8, 4, 4)
    snapshot = builder.build()
    state = SchedulingState(
        snapshot.tenants, snapshot.cohorts, snapshot.nodes, snapshot.running, FAIR.topology_label
    )
    first = schedule(state, snapshot.queued, builder.now, FAIR, snapshot.usage, explain_all=False)
    assert victims(first.result) == []
    (memo,) = state.failed_preemptions.values()
    assert memo == (state.version, float("inf"), float("inf"))
    assert victims(run_cycle(three_borrowers(2, 8, 6).build(), FAIR)) == ["b0"]


def test_a_job_admitted_in_a_cycle_is_never_evicted_by_a_later_job_of_that_cycle() -> None:
    """Found by a property test (no minimum runtime, every job past the starvation limit):
    t0's gang was admitted, borrowing, and t1's gang, within t1's nominal quota, reclaimed it
    in the same cycle; in the next cycle t0 took it back by fair sharing. A job admitted this
    cycle has no pods yet: evicting it gains nothing and starts an eviction cycle."""
    snapshot = (
        SnapshotBuilder(now=100_000.0)  # a day after submission: every job is starving
        .cohort("root")
        .cohort("c0", "root")
        .tenant("t0", "c0", gpu=1)
        .tenant("t1", "c0", gpu=3, weight=0.5)
        .nodes(1, gpus=4)
        .nodes(1, gpus=8)
        .queued("j1", "t0", gpus=1, workers=2, priority=Priority.LOW)
        .queued("j2", "t0", gpus=1, workers=2, priority=Priority.LOW)
        .queued("j3", "t1", gpus=1, priority=Priority.LOW)
        .queued("j4", "t1", gpus=1, workers=2, priority=Priority.LOW)
        .queued("j5", "t1", gpus=1, priority=Priority.LOW)
        .build()
    )
    result = run_cycle(snapshot, replace(FAIR, min_runtime_seconds=0))
    admitted = {a.job_id for a in result.admitted}
    assert admitted
    assert admitted.isdisjoint(victims(result))
