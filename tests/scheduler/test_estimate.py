"""Estimated start times: the cycle run forward over the running jobs' time limits."""

from __future__ import annotations

import pytest

from scheduler.cycle import run_cycle
from scheduler.estimate import Estimate, annotate, applicable, heads, project
from scheduler.model import Condition, Dependency, QueueControls
from scheduler.policy import Policy
from tests.scheduler.builders import SnapshotBuilder

FAIR = Policy.named("fair+backfill")
NOW = 10_000.0


def one_node() -> SnapshotBuilder:
    return SnapshotBuilder(now=NOW).tenant("a", gpu=8).tenant("b", gpu=8).nodes(1)


def test_a_job_starts_when_the_running_job_reaches_its_limit() -> None:
    snapshot = (
        one_node()
        .running("r", "a", gpus=8, max_runtime=3600, started_ago=600)
        .queued("q", "a", gpus=8, max_runtime=1000)
        .queued("q2", "a", gpus=8, max_runtime=1000)
        .build()
    )
    estimates = project(snapshot, FAIR, ["q", "q2"])
    assert estimates == {"q": Estimate(NOW + 3000, False), "q2": Estimate(NOW + 4000, False)}


def test_running_jobs_without_a_limit_make_it_a_bound() -> None:
    snapshot = one_node().running("r", "a", gpus=8).queued("q", "b", gpus=8).build()
    (estimate,) = project(snapshot, FAIR, ["q"]).values()
    assert estimate == Estimate(NOW, True)
    assert estimate.describe() == (  # NOW is 02:46:40, shown as the next whole minute
        "estimated to start at 1970-01-01T02:47:00Z at the earliest "
        "(running jobs without a time limit)"
    )


def test_small_jobs_backfill_ahead_in_the_projection() -> None:
    snapshot = (
        SnapshotBuilder(now=NOW)
        .tenant("a", gpu=16)
        .nodes(2)
        .running("r1", "a", gpus=8, max_runtime=1000, started_ago=0)
        .running("r2", "a", gpus=4, max_runtime=5000, started_ago=0)
        .queued("wide", "a", gpus=8, workers=2, max_runtime=100)
        .queued("short", "a", gpus=4, max_runtime=500)
        .build()
    )
    estimates = project(snapshot, FAIR, ["wide", "short"])
    assert estimates["short"].start == NOW  # fits beside r2 and ends before the reservation
    assert estimates["wide"].start == NOW + 5000


def test_held_and_dependent_jobs() -> None:
    snapshot = (
        one_node()
        .running("r", "a", gpus=8, max_runtime=100, started_ago=0)
        .queued("held", "a", gpus=1, held=True)
        .queued(
            "after", "b", gpus=8, max_runtime=50, depends_on=(Dependency("r", Condition.SUCCEEDED),)
        )
        .queued("never", "b", gpus=1, depends_on=(Dependency("gone", Condition.SUCCEEDED),))
        .controls(QueueControls(outcomes={"r": "running"}))
        .build()
    )
    estimates = project(snapshot, FAIR, ["held", "after", "never"])
    assert estimates == {"after": Estimate(NOW + 100, False)}


def test_the_projection_stops_after_max_steps() -> None:
    builder = one_node()
    for index in range(5):
        builder.queued(f"q{index}", "a", gpus=8, max_runtime=10)
    snapshot = builder.build()
    assert set(project(snapshot, FAIR, ["q4"], max_steps=3)) == set()
    assert project(snapshot, FAIR, ["q4"])["q4"].start == NOW + 40


def test_heads_and_annotate() -> None:
    snapshot = one_node().running("r", "a", gpus=8, max_runtime=60, started_ago=0)
    for index in range(4):
        snapshot.queued(f"q{index}", "a", gpus=8, max_runtime=60)
    result = run_cycle(snapshot.build(), FAIR)
    assert heads(result.pending, per_tenant=2) == ["q0", "q1"]
    estimates = {"q0": Estimate(NOW + 60, False)}
    messages = {job_id: message for job_id, _, _, _, message in annotate(result.pending, estimates)}
    assert messages["q0"].endswith("; estimated to start at 1970-01-01T02:48:00Z")  # next minute
    assert "estimated" not in messages["q1"]


@pytest.mark.parametrize("position", [0, 11])
def test_heads_skips_jobs_without_a_tenant_place(position: int) -> None:
    assert heads([("x", 1, position, "UnknownTenant", "")]) == []


def test_earlier_estimates_do_not_apply_to_jobs_that_were_held_since() -> None:
    estimates = {"held": Estimate(NOW, False), "waiting": Estimate(NOW + 5, False)}
    pending = [
        ("held", 1, 1, "Held", "held"),
        ("waiting", 2, 2, "QuotaExceeded", "no quota"),
        ("other", 3, 3, "QuotaExceeded", "no quota"),
    ]
    assert applicable(pending, estimates) == {"waiting": Estimate(NOW + 5, False)}
