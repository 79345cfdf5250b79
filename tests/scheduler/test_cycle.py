"""The pure cycle on small, hand-built snapshots."""

from dataclasses import replace

import pytest

from scheduler.cycle import explain_queue, run_cycle
from scheduler.model import CycleResult, PreemptionReason, Priority
from scheduler.policy import Policy
from tests.scheduler.builders import SnapshotBuilder, waiting_entry

FAIR = Policy.named("fair")
FIFO = Policy.named("fifo")
BACKFILL = Policy.named("fair+backfill")


def admitted(result: CycleResult) -> set[str]:
    return {a.job_id for a in result.admitted}


def two_tenants(a_gpu: int = 8, b_gpu: int = 8, nodes: int = 2) -> SnapshotBuilder:
    return SnapshotBuilder().tenant("a", gpu=a_gpu).tenant("b", gpu=b_gpu).nodes(nodes)


# -- admission ---------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [FIFO, FAIR, BACKFILL])
def test_jobs_that_fit_are_admitted_with_their_placement(policy: Policy) -> None:
    snapshot = two_tenants().queued("j1", "a", gpus=4).queued("j2", "b", gpus=8).build()
    result = run_cycle(snapshot, policy)
    assert admitted(result) == {"j1", "j2"}
    placements = {a.job_id: a.placement for a in result.admitted}
    assert len(placements["j1"]) == 1
    assert placements["j1"][0] != placements["j2"][0]
    assert result.pending == ()


def test_borrowing_is_flagged_on_admission() -> None:
    snapshot = two_tenants().queued("j1", "a", gpus=8).queued("j2", "a", gpus=4).build()
    result = run_cycle(snapshot, FAIR)
    flags = {a.job_id: a.borrowing for a in result.admitted}
    assert flags == {"j1": False, "j2": True}


def test_borrowing_limit_caps_the_tenant() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=8, borrowing=2)
        .tenant("b", gpu=8)
        .nodes(2)
        .queued("j1", "a", gpus=8)
        .queued("j2", "a", gpus=4)
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    assert admitted(result) == {"j1"}
    waiting = waiting_entry(result, "j2")
    assert waiting.reason == "QuotaExceeded"
    assert waiting.message == (
        "waiting for 4 a100 GPUs: tenant at 8/8 nominal, cohort lends 2; 2nd in tenant queue"
    )


def test_gang_is_all_or_nothing() -> None:
    snapshot = two_tenants(a_gpu=16, nodes=2).running("r", "b", gpus=4)
    result = run_cycle(snapshot.queued("gang", "a", gpus=8, workers=2).build(), FAIR)
    assert admitted(result) == set()
    assert waiting_entry(result, "gang").reason == "InsufficientCapacity"


def test_gang_spreads_over_whole_nodes() -> None:
    snapshot = two_tenants(a_gpu=16).queued("gang", "a", gpus=8, workers=2).build()
    (admit,) = run_cycle(snapshot, FAIR).admitted
    assert sorted(admit.placement) == ["a100-0", "a100-1"]


def test_foreign_pods_count_as_used() -> None:
    snapshot = SnapshotBuilder().tenant("a", gpu=16).nodes(1, foreign_gpus=6)
    result = run_cycle(snapshot.queued("j", "a", gpus=4).build(), FAIR)
    waiting = waiting_entry(result, "j")
    assert waiting.reason == "InsufficientCapacity"
    assert "2 free on schedulable a100 nodes" in waiting.message


def test_cordoned_nodes_are_skipped() -> None:
    snapshot = SnapshotBuilder().tenant("a", gpu=16).nodes(1, schedulable=False).nodes(1)
    (admit,) = run_cycle(snapshot.queued("j", "a", gpus=8).build(), FAIR).admitted
    assert admit.placement == ("a100-1",)


def test_jobs_go_to_nodes_of_their_flavor() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=8)
        .tenant("a", gpu=8, flavor="h100")
        .nodes(1)
        .nodes(1, flavor="h100")
        .queued("j", "a", gpus=8, flavor="h100")
        .build()
    )
    (admit,) = run_cycle(snapshot, FAIR).admitted
    assert admit.placement == ("h100-1",)


def test_single_node_jobs_fill_the_tightest_node() -> None:
    snapshot = two_tenants(a_gpu=16, nodes=2).running("r", "b", gpus=6)
    (admit,) = run_cycle(snapshot.queued("j", "a", gpus=2).build(), FAIR).admitted
    assert admit.placement == ("a100-0",)  # the node with exactly 2 free GPUs


def test_multi_node_gangs_prefer_one_topology_block() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=64)
        .nodes(1, block="x")
        .nodes(2, block="y")
        .nodes(1, block="x")
        .queued("gang", "a", gpus=8, workers=2)
        .build()
    )
    (admit,) = run_cycle(snapshot, FAIR).admitted
    assert sorted(admit.placement) == ["a100-0", "a100-3"]


@pytest.mark.parametrize("policy", [FIFO, FAIR, BACKFILL])
@pytest.mark.parametrize("cordoned", [0, 1], ids=["no nodes", "only a cordoned node"])
def test_job_of_a_flavor_without_nodes_waits_with_no_nodes_for_flavor(
    policy: Policy, cordoned: int
) -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=8)
        .tenant("a", gpu=8, flavor="h100")
        .nodes(1)
        .nodes(cordoned, flavor="h100", schedulable=False)
        .queued("empty", "a", gpus=1, flavor="h100")
        .queued("fits", "a", gpus=1)
        .build()
    )
    result = run_cycle(snapshot, policy)
    assert admitted(result) == {"fits"}
    waiting = waiting_entry(result, "empty")
    # A flavor whose only node is cordoned has nodes (they come back): it waits for capacity.
    expected = "NoNodesForFlavor" if not cordoned else "InsufficientCapacity"
    assert waiting.reason == expected
    if not cordoned:
        assert "no node of the cluster belongs to flavor h100" in waiting.message
    assert result.preempted == ()


def test_unknown_tenant_waits_with_a_reason() -> None:
    result = run_cycle(two_tenants().queued("j", "ghost").build(), FAIR)
    assert waiting_entry(result, "j").reason == "UnknownTenant"


# -- backoff and deadlines ---------------------------------------------------------------


def test_job_in_backoff_waits_until_not_before() -> None:
    builder = two_tenants()
    snapshot = builder.queued("j", "a", not_before=builder.now + 60).build()
    result = run_cycle(snapshot, FAIR)
    assert admitted(result) == set()
    assert waiting_entry(result, "j").reason == "Backoff"
    later = replace(snapshot, now=snapshot.now + 60)
    assert admitted(run_cycle(later, FAIR)) == {"j"}


def test_running_job_past_its_limit_fails_with_deadline_exceeded() -> None:
    snapshot = (
        two_tenants()
        .running("late", "a", started_ago=3600, max_runtime=3599)
        .running("fine", "a", started_ago=3600, max_runtime=3601)
        .running("unlimited", "a", started_ago=10**6)
        .build()
    )
    (failure,) = run_cycle(snapshot, FAIR).failed
    assert (failure.job_id, failure.reason) == ("late", "DeadlineExceeded")


# -- ordering ----------------------------------------------------------------------------


def test_fifo_orders_by_submission_time_across_tenants() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=4)
        .tenant("b", gpu=4)
        .nodes(1)
        .usage("a", 1000.0)
        .queued("third", "b", submitted_at=3.0, priority=Priority.HIGH)
        .queued("first", "a", submitted_at=1.0)
        .queued("second", "b", submitted_at=2.0)
        .build()
    )
    order = [e.job_id for e in explain_queue(snapshot, FIFO, None)]
    assert order == ["first", "second", "third"]


def test_fair_serves_the_tenant_that_used_less_lately() -> None:
    snapshot = (
        two_tenants(nodes=1)
        .usage("a", 100.0)
        .usage("b", 10.0)
        .queued("from-a", "a", gpus=8, submitted_at=1.0)
        .queued("from-b", "b", gpus=8, submitted_at=2.0)
        .build()
    )
    assert admitted(run_cycle(snapshot, FAIR)) == {"from-b"}
    assert admitted(run_cycle(snapshot, FIFO)) == {"from-a"}


def test_tenants_within_nominal_come_before_borrowers() -> None:
    snapshot = (
        two_tenants(nodes=2)
        .running("a-base", "a", gpus=8)
        .usage("b", 1000.0)
        .queued("a-borrow", "a", gpus=8, submitted_at=1.0)
        .queued("b-own", "b", gpus=8, submitted_at=2.0)
        .build()
    )
    assert admitted(run_cycle(snapshot, FAIR)) == {"b-own"}


def test_within_a_tenant_priority_then_user_usage_then_submit_time() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=8)
        .nodes(1)
        .usage("a", 50.0, user="heavy")
        .queued("heavy-old", "a", user="heavy", gpus=8, submitted_at=1.0)
        .queued("light-new", "a", user="light", gpus=8, submitted_at=2.0)
        .queued("urgent", "a", user="heavy", gpus=8, submitted_at=3.0, priority=Priority.HIGH)
        .build()
    )
    order = [e.job_id for e in explain_queue(snapshot, FAIR, "a")]
    assert order == ["urgent", "light-new", "heavy-old"]


def test_entry_penalty_interleaves_a_burst_with_another_tenant() -> None:
    builder = SnapshotBuilder().tenant("a", gpu=4).tenant("b", gpu=4).nodes(1)
    for index in range(3):
        builder.queued(f"a{index}", "a", gpus=1, submitted_at=float(index))
    builder.queued("b0", "b", gpus=1, submitted_at=10.0)
    order = [e.job_id for e in explain_queue(builder.build(), FAIR, None)]
    assert order.index("b0") < order.index("a2")
    assert order[0] == "a0"


def test_explain_lists_positions_and_factors() -> None:
    snapshot = (
        two_tenants(nodes=1)
        .running("r", "b", gpus=8)
        .queued("a1", "a", gpus=8)
        .queued("a2", "a", gpus=8)
        .queued("b1", "b", gpus=8)
        .build()
    )
    entries = explain_queue(snapshot, FAIR, None)
    assert [(e.job_id, e.position) for e in entries] == [("a1", 1), ("a2", 2), ("b1", 3)]
    assert entries[2].factors["tenant_borrowing"] == 1.0
    assert entries[2].factors["tenant_drs"] == pytest.approx(500.0)
    assert set(entries[0].factors) >= {
        "tenant_usage_ratio",
        "priority",
        "user_usage",
        "age_seconds",
    }
    only_b = explain_queue(snapshot, FAIR, "b")
    assert [(e.job_id, e.tenant_position) for e in only_b] == [("b1", 1)]
    result = run_cycle(snapshot, FAIR)
    assert waiting_entry(result, "a2").position == 2
    assert waiting_entry(result, "a2").message.endswith("2nd in tenant queue")


# -- preemption --------------------------------------------------------------------------


def test_higher_priority_evicts_lower_priority_of_the_same_tenant() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=8)
        .tenant("b", gpu=0)
        .nodes(1)
        .running("low", "a", gpus=4, priority=Priority.LOW)
        .running("normal", "a", gpus=4)
        .queued("high", "a", gpus=4, priority=Priority.HIGH)
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    (preempt,) = result.preempted
    assert (preempt.job_id, preempt.reason) == ("low", PreemptionReason.IN_TENANT_PRIORITY)
    assert preempt.preemptor_id == "high"
    assert admitted(result) == set()
    assert waiting_entry(result, "high").reason == "Preempting"


def test_tenant_below_nominal_reclaims_borrowed_gpus() -> None:
    snapshot = (
        two_tenants(nodes=2)
        .running("b1", "b", gpus=8, started_ago=7200)
        .running("b2", "b", gpus=4, started_ago=3600)
        .running("b3", "b", gpus=4, started_ago=1800)
        .queued("a1", "a", gpus=4)
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    (preempt,) = result.preempted
    assert (preempt.job_id, preempt.reason) == ("b3", PreemptionReason.RECLAIM_NOMINAL)


def test_minimum_runtime_protects_just_started_jobs() -> None:
    snapshot = (
        two_tenants(nodes=2)
        .running("b1", "b", gpus=8, started_ago=120)
        .running("b2", "b", gpus=8, started_ago=60)
        .queued("a1", "a", gpus=4)
        .build()
    )
    assert run_cycle(snapshot, FAIR).preempted == ()
    shorter = replace(FAIR, min_runtime_seconds=30)
    assert [p.job_id for p in run_cycle(snapshot, shorter).preempted] == ["b2"]


def test_fifo_never_preempts() -> None:
    snapshot = two_tenants(nodes=2).running("b1", "b", gpus=8).running("b2", "b", gpus=8)
    result = run_cycle(snapshot.queued("a1", "a", gpus=4).build(), FIFO)
    assert result.preempted == ()
    assert waiting_entry(result, "a1").reason == "QuotaExceeded"


def digest_cohort(b_jobs: list[int]) -> SnapshotBuilder:
    builder = (
        SnapshotBuilder()
        .tenant("A", gpu=2)
        .tenant("B", gpu=2)
        .tenant("C", gpu=6)
        .nodes(5, gpus=2)
        .running("a-run", "A", gpus=2)
        .running("c-run", "C", gpus=2)
    )
    for index, gpus in enumerate(b_jobs):
        builder.running(f"b{index}", "B", gpus=gpus, started_ago=3600 - index)
    return builder.queued("W", "A", gpus=2)


def test_fair_share_preemption_final_share_rule_evicts_one_of_three() -> None:
    result = run_cycle(digest_cohort([2, 2, 2]).build(), FAIR)
    (preempt,) = result.preempted
    assert preempt.reason is PreemptionReason.FAIR_SHARE
    assert preempt.job_id == "b2"  # most recently started: least work lost


def test_fair_share_preemption_falls_back_to_the_initial_share_rule() -> None:
    builder = (
        SnapshotBuilder()
        .tenant("A", gpu=2)
        .tenant("B", gpu=2)
        .tenant("C", gpu=6)
        .nodes(1, gpus=6)
        .nodes(2, gpus=2)
        .running("b0", "B", gpus=6)
        .running("a-run", "A", gpus=2)
        .running("c-run", "C", gpus=2)
        .queued("W", "A", gpus=2)
    )
    (preempt,) = run_cycle(builder.build(), FAIR).preempted
    assert preempt.job_id == "b0"


def test_no_preemption_between_equal_shares() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=4)
        .tenant("b", gpu=4)
        .tenant("c", gpu=8)
        .nodes(3, gpus=4)
        .running("a0", "a", gpus=4)
        .running("a1", "a", gpus=4)
        .running("b0", "b", gpus=4)
        .queued("b-more", "b", gpus=4)
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    assert result.preempted == ()
    assert waiting_entry(result, "b-more").reason == "InsufficientCapacity"


def test_victims_that_do_not_free_enough_are_not_preempted() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=16)
        .tenant("b", gpu=0)
        .nodes(2)
        .running("a-other", "a", gpus=8, priority=Priority.HIGH)
        .running("b1", "b", gpus=4)
        .queued("big", "a", gpus=16, workers=1)
        .build()
    )
    assert run_cycle(snapshot, FAIR).preempted == ()


def test_preemptor_is_served_first_once_victims_are_gone() -> None:
    base = (
        two_tenants(nodes=2)
        .running("b1", "b", gpus=8)
        .running("b2", "b", gpus=8)
        .queued("a1", "a", gpus=8, submitted_at=5.0)
    )
    first = run_cycle(base.build(), FAIR)
    (preempt,) = first.preempted
    snapshot = base.build()
    after = replace(
        snapshot,
        running=tuple(j for j in snapshot.running if j.id != preempt.job_id),
        queued=(
            *snapshot.queued,
            SnapshotBuilder().tenant("b").job("b3", "b", gpus=8, submitted_at=0.0),
        ),
        preempting=frozenset({"a1"}),
    )
    second = run_cycle(after, FAIR)
    assert admitted(second) == {"a1"}
    assert waiting_entry(second, "b3").reason in {"QuotaExceeded", "InsufficientCapacity"}


def test_preemptor_holds_its_nodes_for_the_rest_of_the_cycle() -> None:
    snapshot = (
        two_tenants(nodes=2)
        .running("b1", "b", gpus=8)
        .running("b2", "b", gpus=6, started_ago=1800)
        .queued("a1", "a", gpus=8)
        .queued("a2", "a", gpus=2)
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    assert [p.job_id for p in result.preempted] == ["b2"]
    assert admitted(result) == set()


# -- backfill ----------------------------------------------------------------------------


def reserved_cluster() -> SnapshotBuilder:
    """Head needs a whole node; the half-free node frees up in an hour: it is reserved then."""
    return (
        SnapshotBuilder()
        .tenant("a", gpu=64)
        .nodes(2)
        .running("r1", "a", gpus=4, started_ago=0, max_runtime=3600)
        .running("r2", "a", gpus=8, started_ago=0, max_runtime=7200)
        .queued("head", "a", gpus=8, submitted_at=1.0)
    )


def test_backfill_starts_jobs_that_end_before_the_reservation() -> None:
    snapshot = (
        reserved_cluster()
        .queued("long", "a", gpus=4, submitted_at=2.0, max_runtime=7200)
        .queued("short", "a", gpus=4, submitted_at=3.0, max_runtime=1800)
        .build()
    )
    result = run_cycle(snapshot, BACKFILL)
    assert admitted(result) == {"short"}
    assert waiting_entry(result, "long").reason == "WaitingForReservation"
    assert waiting_entry(result, "head").reason == "InsufficientCapacity"
    assert "reserved to start by" in waiting_entry(result, "head").message
    assert admitted(run_cycle(snapshot, FAIR)) == {"long"}


def test_jobs_without_time_limit_never_delay_the_reservation() -> None:
    snapshot = reserved_cluster().queued("unbounded", "a", gpus=4, submitted_at=2.0).build()
    assert admitted(run_cycle(snapshot, FAIR)) == {"unbounded"}
    with_backfill = run_cycle(snapshot, BACKFILL)
    assert admitted(with_backfill) == set()
    assert waiting_entry(with_backfill, "unbounded").reason == "WaitingForReservation"


def test_spare_capacity_at_the_reservation_may_be_used_by_anyone() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=64)
        .nodes(3)
        .running("r1", "a", gpus=8, started_ago=0, max_runtime=3600)
        .running("r2", "a", gpus=8, started_ago=0, max_runtime=3600)
        .running("r3", "a", gpus=4, started_ago=0, max_runtime=3600)
        .queued("head", "a", gpus=8, workers=2, submitted_at=1.0)
        .queued("small", "a", gpus=4, submitted_at=2.0)
        .build()
    )
    result = run_cycle(snapshot, BACKFILL)
    assert admitted(result) == {"small"}


def test_restarted_jobs_are_protected_twice_as_long_per_eviction() -> None:
    builder = two_tenants(nodes=2).running("b1", "b", gpus=8, started_ago=7200)
    restarted = builder.job("b2", "b", gpus=8)
    snapshot = builder.queued("a1", "a", gpus=8).build()
    placed = replace(
        restarted,
        placement=("a100-1",) * 1,
        admitted_at=snapshot.now - 1000,
        attempts=2,
    )
    snapshot = replace(snapshot, running=(*snapshot.running, placed))
    (preempt,) = run_cycle(snapshot, FAIR).preempted
    assert preempt.job_id == "b1"  # b2 ran 1000 s < 300 s x 2^2 since its last restart
    fresh = replace(snapshot, running=(snapshot.running[0], replace(placed, attempts=0)))
    (preempt,) = run_cycle(fresh, FAIR).preempted
    assert preempt.job_id == "b2"


def test_starving_jobs_are_served_first() -> None:
    builder = (
        two_tenants(nodes=1)
        .usage("a", 1000.0)
        .queued("old", "a", gpus=8, submitted_at=0.0)
        .queued("new", "b", gpus=8, submitted_at=9_000.0)
    )
    snapshot = builder.build()
    assert admitted(run_cycle(snapshot, FAIR)) == {"new"}
    patient = replace(FAIR, starvation_seconds=3600)
    assert admitted(run_cycle(snapshot, patient)) == {"old"}
    entries = explain_queue(snapshot, patient, None)
    assert entries[0].job_id == "old"
    assert entries[0].factors["starving"] == 1.0
