"""Kueue quota semantics on the cohort tree: borrowing, lending and cohort limits."""

from dataclasses import dataclass

import pytest

from quotas.errors import QuotaTreeError
from quotas.tree import UNLIMITED, NodeSpec, QuotaTree

CPU = ("default", "cpu")
GPU = ("h100", "gpu")


@dataclass(frozen=True)
class Q:
    nominal: int
    borrowing_limit: int | None = None
    lending_limit: int | None = None


def two_teams(a: Q = Q(9), b: Q = Q(12)) -> QuotaTree:
    return QuotaTree(
        cohorts=[NodeSpec("cohort", None)],
        tenants=[NodeSpec("team-a", "cohort", {CPU: a}), NodeSpec("team-b", "cohort", {CPU: b})],
    )


@pytest.mark.parametrize(
    ("a", "b", "a_may_use", "b_keeps"),
    [
        (Q(9), Q(12), 21, 21),
        (Q(9, borrowing_limit=1), Q(12), 10, 21),
        (Q(9), Q(12, lending_limit=1), 10, 21),
    ],
)
def test_kueue_borrowing_and_lending_example(a: Q, b: Q, a_may_use: int, b_keeps: int) -> None:
    tree = two_teams(a, b)
    assert tree.available("team-a", CPU) == a_may_use
    assert tree.available("team-b", CPU) == b_keeps


def test_lending_limit_keeps_the_rest_for_the_lender() -> None:
    tree = two_teams(Q(9), Q(12, lending_limit=1))
    tree.add("team-a", {CPU: 10})
    assert tree.available("team-a", CPU) == 0
    assert tree.available("team-b", CPU) == 11
    assert not tree.fits("team-a", {CPU: 1})
    assert tree.violations() == []


def test_usage_is_released_again() -> None:
    tree = two_teams()
    tree.add("team-a", {CPU: 15})
    assert tree.available("team-b", CPU) == 6
    assert tree.is_borrowing("team-a")
    tree.remove("team-a", {CPU: 15})
    assert tree.available("team-b", CPU) == 21
    assert not tree.is_borrowing("team-a")


def hierarchy(academic_borrowing: int | None) -> QuotaTree:
    return QuotaTree(
        cohorts=[
            NodeSpec("root", None),
            NodeSpec("academic", "root", {GPU: Q(0, borrowing_limit=academic_borrowing)}),
            NodeSpec("industry", "root"),
        ],
        tenants=[
            NodeSpec("lab-1", "academic", {GPU: Q(8)}),
            NodeSpec("lab-2", "academic", {GPU: Q(8)}),
            NodeSpec("corp", "industry", {GPU: Q(16)}),
        ],
    )


def test_cohort_borrowing_limit_bounds_the_whole_subtree() -> None:
    tree = hierarchy(academic_borrowing=4)
    assert tree.available("lab-1", GPU) == 20  # 16 in academic + 4 from industry
    tree.add("lab-1", {GPU: 12})
    assert tree.available("lab-2", GPU) == 8
    tree.add("lab-2", {GPU: 8})
    assert tree.available("lab-1", GPU) == 0
    assert tree.available("corp", GPU) == 12
    assert tree.violations() == []


def test_unlimited_cohort_borrows_everything_idle() -> None:
    tree = hierarchy(academic_borrowing=None)
    assert tree.available("lab-1", GPU) == 32
    assert tree.potential("lab-1", GPU) == 32


def test_drs_of_the_digest_example() -> None:
    tree = QuotaTree(
        cohorts=[NodeSpec("c", None)],
        tenants=[
            NodeSpec("A", "c", {GPU: Q(2)}),
            NodeSpec("B", "c", {GPU: Q(2)}),
            NodeSpec("C", "c", {GPU: Q(6)}),
        ],
    )
    tree.add("A", {GPU: 2})
    tree.add("B", {GPU: 6})
    tree.add("C", {GPU: 2})
    assert tree.lendable("A") == {"gpu": 10}
    assert tree.share("A", {GPU: 2}) == pytest.approx(200.0)
    assert tree.share("B") == pytest.approx(400.0)


def test_unmentioned_resources_are_not_limited() -> None:
    tree = two_teams()
    assert ("default", "memory") not in tree.limited
    assert tree.available("team-a", ("default", "memory")) == UNLIMITED
    assert tree.fits("team-a", {("default", "memory"): 10**15})


@pytest.mark.parametrize(
    ("cohorts", "tenants", "message"),
    [
        ([NodeSpec("c", "missing")], [], "unknown cohort"),
        ([NodeSpec("c", None)], [NodeSpec("t", "c"), NodeSpec("t", "c")], "duplicate tenant"),
        ([NodeSpec("x", "y"), NodeSpec("y", "x")], [], "cycle"),
        ([NodeSpec("c", None)], [NodeSpec("t", "c", weight=-1)], "negative weight"),
    ],
)
def test_malformed_trees_are_rejected(
    cohorts: list[NodeSpec], tenants: list[NodeSpec], message: str
) -> None:
    with pytest.raises(QuotaTreeError, match=message):
        QuotaTree(cohorts, tenants)
