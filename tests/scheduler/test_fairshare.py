"""The fair-share tree (``yushan share``): entitlement, borrowing and usage per cohort, tenant
and user, from a snapshot."""

from __future__ import annotations

import pytest

from scheduler.fairshare import fair_shares, share_tree
from scheduler.state import SchedulingState
from tests.scheduler.builders import SnapshotBuilder


def snapshot() -> SnapshotBuilder:
    """Cohort root > physics; lab-a (16 GPUs, weight 1) and lab-b (8 GPUs, weight 2) in root,
    lab-p (8 GPUs, weight 1) in physics; lab-x (no cohort, 8 GPUs, weight 1)."""
    return (
        SnapshotBuilder()
        .cohort("root")
        .cohort("physics", parent="root")
        .nodes(8)
        .tenant("lab-a", "root", gpu=16)
        .tenant("lab-b", "root", gpu=8, weight=2.0)
        .tenant("lab-p", "physics", gpu=8)
        .tenant("lab-x", None, gpu=8)
    )


def test_shares_are_weight_times_nominal_and_the_scheduler_uses_the_same() -> None:
    built = snapshot().build()
    shares = fair_shares(built.tenants)
    # raw: a 16, b 16, p 8, x 8 -> total 48
    assert shares == pytest.approx({"lab-a": 1 / 3, "lab-b": 1 / 3, "lab-p": 1 / 6, "lab-x": 1 / 6})
    state = SchedulingState(built.tenants, built.cohorts, built.nodes, built.running, "block")
    assert dict(state.entitlement()) == shares


def test_tree_rows_depth_first_with_held_borrowed_and_usage() -> None:
    built = (
        snapshot()
        .running("j1", "lab-a", gpus=8, workers=2, user="alice")
        .running("j2", "lab-a", gpus=4, user="bob")
        .running("j3", "lab-p", gpus=2, user="carol")
        .usage("lab-a", 300.0)
        .usage("lab-p", 100.0)
        .usage("lab-a", 200.0, user="alice")
        .usage("lab-a", 100.0, user="dave")  # no job now, usage recorded
        .build()
    )
    rows = share_tree(built)
    assert [(r.kind, r.name, r.depth) for r in rows] == [
        ("cohort", "root", 0),
        ("cohort", "physics", 1),
        ("tenant", "lab-p", 2),
        ("user", "carol", 3),
        ("tenant", "lab-a", 1),
        ("user", "alice", 2),
        ("user", "bob", 2),
        ("user", "dave", 2),
        ("tenant", "lab-b", 1),
        ("tenant", "lab-x", 0),
    ]
    by_name = {r.name: r for r in rows}
    lab_a = by_name["lab-a"]
    assert (lab_a.nominal_gpus, lab_a.gpus, lab_a.borrowed_gpus) == (16, 20, 4)
    assert lab_a.usage_ratio == pytest.approx((300 / 400) / (1 / 3))
    assert by_name["alice"].gpus == 16
    assert by_name["alice"].share == pytest.approx(1 / 9)  # a third of lab-a's share
    assert by_name["dave"].gpus == 0
    root = by_name["root"]
    # root's direct members: physics (lab-p) and lab-a, lab-b
    assert (root.nominal_gpus, root.gpus, root.borrowed_gpus) == (32, 22, 4)
    assert root.share == pytest.approx(1 / 3 + 1 / 3 + 1 / 6)
    assert root.usage_gpu_seconds == 400.0
    assert by_name["physics"].share == pytest.approx(1 / 6)
    assert by_name["lab-x"].usage_ratio == 0.0


def test_no_usage_yet_has_no_ratio() -> None:
    rows = share_tree(snapshot().build())
    assert all(r.usage_ratio is None for r in rows)
    assert all(r.gpus == 0 for r in rows)
