"""Holds, stop policies, per-user limits, array parallelism and dependencies in the pure cycle."""

from __future__ import annotations

import pytest

from scheduler.cycle import explain_queue, run_cycle
from scheduler.dependencies import Verdict, evaluate
from scheduler.model import (
    Condition,
    CycleResult,
    Dependency,
    PreemptionReason,
    QueueControls,
    StopPolicy,
    UserLimits,
)
from scheduler.policy import Policy
from tests.scheduler.builders import SnapshotBuilder, waiting_entry

FAIR = Policy.named("fair")


def admitted(result: CycleResult) -> set[str]:
    return {a.job_id for a in result.admitted}


def lab() -> SnapshotBuilder:
    return SnapshotBuilder().tenant("a", gpu=16).tenant("b", gpu=16).nodes(4)


# -- holds and stop policies ------------------------------------------------------------------


def test_a_held_job_is_never_admitted_and_says_held() -> None:
    snapshot = lab().queued("held", "a", gpus=1, held=True).queued("free", "a", gpus=1).build()
    result = run_cycle(snapshot, FAIR)
    assert admitted(result) == {"free"}
    waiting = waiting_entry(result, "held")
    assert waiting.reason == "Held"
    assert "release" in waiting.message
    assert (waiting.position, waiting.tenant_position) == (2, 2)


@pytest.mark.parametrize(
    ("controls", "reason", "blocked"),
    [
        (QueueControls(tenant_stops={"a": StopPolicy.HOLD}), "TenantHeld", {"a1", "a2"}),
        (QueueControls(tenant_stops={"a": StopPolicy.HOLD_AND_DRAIN}), "TenantHeld", {"a1", "a2"}),
        (QueueControls(flavor_stops={"v100": StopPolicy.HOLD}), "FlavorHeld", {"a2"}),
    ],
)
def test_stopped_tenants_and_flavors_admit_nothing_new(
    controls: QueueControls, reason: str, blocked: set[str]
) -> None:
    snapshot = (
        lab()
        .tenant("a", gpu=8, flavor="v100")
        .nodes(1, flavor="v100")
        .queued("a1", "a", gpus=1)
        .queued("a2", "a", gpus=1, flavor="v100")
        .queued("b1", "b", gpus=1)
        .controls(controls)
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    assert admitted(result) == {"a1", "a2", "b1"} - blocked
    for job_id in blocked:
        assert waiting_entry(result, job_id).reason == reason
        assert "opened" in waiting_entry(result, job_id).message


def test_hold_keeps_running_jobs_and_drain_stops_them() -> None:
    base = lab().running("ra", "a", gpus=4).running("rb", "b", gpus=4)
    held = base.controls(QueueControls(tenant_stops={"a": StopPolicy.HOLD})).build()
    assert run_cycle(held, FAIR).preempted == ()
    draining = base.controls(QueueControls(tenant_stops={"a": StopPolicy.HOLD_AND_DRAIN})).build()
    (drain,) = run_cycle(draining, FAIR).preempted
    assert drain.job_id == "ra"
    assert drain.reason is PreemptionReason.DRAINED
    assert "draining" in drain.message


def test_a_draining_flavor_stops_its_running_jobs_only() -> None:
    snapshot = (
        lab()
        .tenant("a", gpu=8, flavor="v100")
        .nodes(1, flavor="v100")
        .running("on-v100", "a", gpus=2, flavor="v100")
        .running("on-a100", "a", gpus=2)
        .controls(QueueControls(flavor_stops={"v100": StopPolicy.HOLD_AND_DRAIN}))
        .build()
    )
    assert [p.job_id for p in run_cycle(snapshot, FAIR).preempted] == ["on-v100"]


def test_drained_capacity_is_not_reused_in_the_same_cycle() -> None:
    snapshot = (
        SnapshotBuilder()
        .tenant("a", gpu=8)
        .tenant("b", gpu=8)
        .nodes(1)
        .running("ra", "a", gpus=8)
        .queued("b1", "b", gpus=8)
        .controls(QueueControls(tenant_stops={"a": StopPolicy.HOLD_AND_DRAIN}))
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    assert [p.job_id for p in result.preempted] == ["ra"]
    assert admitted(result) == set()


# -- per-user limits and arrays ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (UserLimits(max_running_jobs=2), {"j1", "j2"}),
        (UserLimits(max_gpus=5), {"j1", "j2"}),
        (UserLimits(max_gpus=3), {"j1"}),
        (UserLimits(max_queued_jobs=1), {"j1", "j2", "j3"}),
        (UserLimits(), {"j1", "j2", "j3"}),
    ],
)
def test_user_limits_cap_what_one_user_runs(limits: UserLimits, expected: set[str]) -> None:
    snapshot = (
        lab()
        .queued("j1", "a", gpus=2)
        .queued("j2", "a", gpus=2)
        .queued("j3", "a", gpus=2)
        .queued("bob", "a", gpus=2, user="bob")
        .controls(QueueControls(user_limits={"a": limits}, user_overrides={}))
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    assert admitted(result) == expected | {"bob"}
    for job_id in {"j1", "j2", "j3"} - expected:
        assert waiting_entry(result, job_id).reason == "UserLimit"


def test_running_jobs_count_against_the_limit() -> None:
    snapshot = (
        lab()
        .running("r", "a", gpus=4)
        .queued("q", "a", gpus=1)
        .controls(QueueControls(user_limits={"a": UserLimits(max_gpus=4)}))
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    assert admitted(result) == set()
    assert waiting_entry(result, "q").message.startswith(
        "user alice uses 4 GPUs in a and the job needs 1, the limit is 4 (max_gpus)"
    )


def test_a_user_override_beats_the_tenant_default_field_by_field() -> None:
    controls = QueueControls(
        user_limits={"a": UserLimits(max_gpus=2, max_running_jobs=1)},
        user_overrides={("a", "bob"): UserLimits(max_running_jobs=3)},
    )
    assert controls.limits_for("a", "bob") == UserLimits(max_gpus=2, max_running_jobs=3)
    assert controls.limits_for("a", "alice") == UserLimits(max_gpus=2, max_running_jobs=1)
    assert controls.limits_for("b", "bob") == UserLimits()
    snapshot = (
        lab()
        .queued("a1", "a", gpus=1)
        .queued("a2", "a", gpus=1)
        .queued("b1", "a", gpus=1, user="bob")
        .queued("b2", "a", gpus=1, user="bob")
        .queued("b3", "a", gpus=1, user="bob")
        .controls(controls)
        .build()
    )
    assert admitted(run_cycle(snapshot, FAIR)) == {"a1", "b1", "b2"}


def test_a_job_over_its_user_limit_never_preempts() -> None:
    builder = (
        SnapshotBuilder()
        .tenant("a", gpu=8)
        .tenant("b", gpu=8)
        .nodes(2)
        .running("b1", "b", gpus=8)
        .running("b2", "b", gpus=4)
        .running("mine", "a", gpus=1)
        .queued("reclaim", "a", gpus=4)
    )
    unlimited = run_cycle(builder.build(), FAIR)
    assert [p.job_id for p in unlimited.preempted] == ["b2"]
    limited = builder.controls(QueueControls(user_limits={"a": UserLimits(max_running_jobs=1)}))
    result = run_cycle(limited.build(), FAIR)
    assert result.preempted == ()
    assert waiting_entry(result, "reclaim").reason == "UserLimit"


def test_array_parallelism_caps_running_tasks() -> None:
    builder = lab().running("t0", "a", gpus=1, array=("arr", 2))
    for index in range(1, 5):
        builder.queued(f"t{index}", "a", gpus=1, array=("arr", 2))
    result = run_cycle(builder.build(), FAIR)
    assert admitted(result) == {"t1"}
    assert waiting_entry(result, "t2").reason == "ArrayLimit"


# -- dependencies -----------------------------------------------------------------------------

OK = Condition.SUCCEEDED
NOT_OK = Condition.FAILED
ANY = Condition.FINISHED


@pytest.mark.parametrize(
    ("condition", "status", "verdict"),
    [
        (OK, "succeeded", Verdict.MET),
        (OK, "failed", Verdict.NEVER),
        (OK, "cancelled", Verdict.NEVER),
        (OK, "running", Verdict.OPEN),
        (OK, "queued", Verdict.OPEN),
        (NOT_OK, "failed", Verdict.MET),
        (NOT_OK, "cancelled", Verdict.MET),
        (NOT_OK, "succeeded", Verdict.NEVER),
        (NOT_OK, "admitted", Verdict.OPEN),
        (ANY, "succeeded", Verdict.MET),
        (ANY, "failed", Verdict.MET),
        (ANY, "cancelled", Verdict.MET),
        (ANY, "running", Verdict.OPEN),
        (ANY, None, Verdict.NEVER),
    ],
)
def test_dependency_verdicts(condition: Condition, status: str | None, verdict: Verdict) -> None:
    outcomes = {} if status is None else {"d": status}
    assert evaluate((Dependency("d", condition),), outcomes)[0] is verdict


def dependent(outcomes: dict[str, str], *dependencies: Dependency) -> CycleResult:
    snapshot = (
        lab()
        .queued("j", "a", gpus=1, depends_on=dependencies)
        .controls(QueueControls(outcomes=outcomes))
        .build()
    )
    return run_cycle(snapshot, FAIR)


def test_a_job_waits_for_its_dependencies() -> None:
    result = dependent(
        {"d1": "succeeded", "d2": "running"}, Dependency("d1", OK), Dependency("d2", ANY)
    )
    assert admitted(result) == set()
    waiting = waiting_entry(result, "j")
    assert (waiting.reason, waiting.message) == ("Dependency", "waiting for job(s) d2 (finished)")


def test_a_job_starts_once_every_dependency_is_met() -> None:
    outcomes = {"d1": "succeeded", "d2": "failed"}
    result = dependent(outcomes, Dependency("d1", OK), Dependency("d2", NOT_OK))
    assert admitted(result) == {"j"}


def test_a_dependency_that_can_never_be_met_fails_the_job() -> None:
    outcomes = {"d1": "failed", "d2": "running"}
    result = dependent(outcomes, Dependency("d2", ANY), Dependency("d1", OK))
    (failure,) = result.failed
    assert (failure.job_id, failure.reason) == ("j", "DependencyNeverSatisfied")
    assert failure.message == "job d1 ended failed, so the dependency 'succeeded' can never be met"
    assert admitted(result) == set()
    assert result.pending == ()


def test_held_takes_precedence_over_stops_and_dependencies() -> None:
    snapshot = (
        lab()
        .queued("j", "a", gpus=1, held=True, depends_on=(Dependency("d", OK),))
        .controls(QueueControls(tenant_stops={"a": StopPolicy.HOLD}, outcomes={"d": "failed"}))
        .build()
    )
    result = run_cycle(snapshot, FAIR)
    assert result.failed == ()
    assert waiting_entry(result, "j").reason == "Held"


def test_gated_jobs_appear_in_the_queue_view() -> None:
    snapshot = lab().queued("free", "a").queued("held", "a", held=True).build()
    entries = explain_queue(snapshot, FAIR, "a")
    assert [(e.job_id, e.position) for e in entries] == [("free", 1), ("held", 2)]
