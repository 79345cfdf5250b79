"""Deep queues: past the first jobs of a tenant that can start nothing more, the cycle lists the
rest with their positions and a shared reason instead of examining each one."""

from __future__ import annotations

from scheduler.cycle import BEHIND, EXPLAINED_PER_TENANT, run_cycle
from scheduler.policy import Policy
from tests.scheduler.builders import SnapshotBuilder, entries

FAIR = Policy.named("fair")


def test_a_blocked_tenants_deep_queue_keeps_its_order_and_positions() -> None:
    depth = EXPLAINED_PER_TENANT + 25
    builder = SnapshotBuilder().tenant("a", gpu=8).tenant("b", gpu=8).nodes(2)
    builder.running("a-run", "a", gpus=8).running("b-run", "b", gpus=8)
    for index in range(depth):
        builder.queued(f"a{index:03d}", "a", gpus=1, submitted_at=float(index))
    result = run_cycle(builder.build(), FAIR)
    mine = [p for p in entries(result) if p.job_id.startswith("a")]
    assert [p.job_id for p in mine] == [f"a{i:03d}" for i in range(depth)]
    assert [p.tenant_position for p in mine] == list(range(1, depth + 1))
    assert [p.position for p in mine] == sorted(p.position for p in mine)
    explained = mine[:EXPLAINED_PER_TENANT]
    assert all(p.reason != BEHIND for p in explained)
    assert {p.reason for p in mine[EXPLAINED_PER_TENANT:]} == {BEHIND}


def test_a_smaller_job_deep_in_the_queue_still_starts() -> None:
    """Free GPUs cover the small job at the back: the tenant is not written off."""
    depth = EXPLAINED_PER_TENANT + 5
    builder = SnapshotBuilder().tenant("a", gpu=16).nodes(2).running("r", "a", gpus=8)
    builder.running("r2", "a", gpus=4)
    for index in range(depth):
        builder.queued(f"big{index:03d}", "a", gpus=8, submitted_at=float(index))
    builder.queued("small", "a", gpus=2, submitted_at=float(depth))
    result = run_cycle(builder.build(), FAIR)
    assert [a.job_id for a in result.admitted] == ["small"]
    assert BEHIND not in {p.reason for p in entries(result)}


def _deep_a100_queue(with_h100_job: bool) -> SnapshotBuilder:
    """Tenant a: a full a100 node and a deep a100 queue; optionally one h100 job at the back
    that can start on a free h100 node."""
    builder = SnapshotBuilder().tenant("a", gpu=64, flavor="a100").tenant("a", gpu=8, flavor="h100")
    builder.nodes(1, flavor="a100").nodes(1, flavor="h100").running("r", "a", flavor="a100", gpus=8)
    for index in range(EXPLAINED_PER_TENANT + 20):
        builder.queued(f"q{index:03d}", "a", flavor="a100", gpus=8, submitted_at=float(index))
    if with_h100_job:
        builder.queued("small", "a", flavor="h100", gpus=1, submitted_at=1000.0)
    return builder


def test_a_startable_job_of_another_flavor_leaves_the_deep_queue_as_it_was() -> None:
    """The loop rewrites every job whose reason or message changed: a job of another flavor
    coming and going must leave the deep queue's entries exactly as they were."""
    alone = run_cycle(_deep_a100_queue(with_h100_job=False).build(), FAIR)
    beside = run_cycle(_deep_a100_queue(with_h100_job=True).build(), FAIR)
    assert [a.job_id for a in beside.admitted] == ["small"]
    assert beside.pending == alone.pending
    deep = [p for p in entries(beside) if p.tenant_position > EXPLAINED_PER_TENANT]
    assert {p.reason for p in deep} == {BEHIND}
    assert {p.message for p in deep} == {
        "waiting behind earlier a100 jobs of a, which cannot start now "
        "(no free a100 GPUs or quota left for even its smallest job)"
    }


def test_a_deep_queue_is_written_off_when_free_gpus_are_too_scattered_for_any_of_its_jobs() -> None:
    """Eight GPUs are free, but four per node: no one-worker 8-GPU job can start, so past the
    first jobs the cycle no longer looks at each one."""
    builder = SnapshotBuilder().tenant("a", gpu=64).nodes(2, gpus=4)
    for index in range(EXPLAINED_PER_TENANT + 5):
        builder.queued(f"q{index:03d}", "a", gpus=8, submitted_at=float(index))
    result = run_cycle(builder.build(), FAIR)
    assert result.admitted == ()
    reasons = [p.reason for p in entries(result)]
    assert BEHIND not in reasons[:EXPLAINED_PER_TENANT]
    assert set(reasons[EXPLAINED_PER_TENANT:]) == {BEHIND}
