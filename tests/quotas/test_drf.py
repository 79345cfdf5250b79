"""DRF progressive filling, Kueue's DRS test vectors and its fair-sharing preemption rules."""

import math

import pytest

from quotas.drf import (
    PreemptionRule,
    borrowed_share,
    dominant_share,
    may_preempt,
    progressive_filling,
)


def test_drf_paper_example_gives_three_and_two_tasks() -> None:
    capacity = {"cpu": 9.0, "mem": 18.0}
    tasks = progressive_filling(capacity, [{"cpu": 1, "mem": 4}, {"cpu": 3, "mem": 1}])
    assert tasks == [3, 2]
    a_share = dominant_share({"cpu": 3, "mem": 12}, capacity)
    b_share = dominant_share({"cpu": 6, "mem": 2}, capacity)
    assert a_share == pytest.approx(2 / 3)
    assert b_share == pytest.approx(2 / 3)


def test_weighted_drf_gives_the_heavier_user_more() -> None:
    capacity = {"gpu": 12.0}
    tasks = progressive_filling(capacity, [{"gpu": 1}, {"gpu": 1}], weights=[1.0, 2.0])
    assert tasks == [4, 8]


LENDABLE = {"cpu": 10.0, "gpu": 10.0}
NOMINAL = {"cpu": 2, "gpu": 5}


def borrowed(usage: dict[str, int], incoming: dict[str, int] | None = None) -> dict[str, float]:
    incoming = incoming or {}
    return {r: max(0, usage[r] + incoming.get(r, 0) - NOMINAL[r]) for r in NOMINAL}


@pytest.mark.parametrize(
    ("usage", "incoming", "weight", "expected"),
    [
        ({"cpu": 3, "gpu": 7}, None, 1.0, 200.0),
        ({"cpu": 3, "gpu": 3}, None, 1.0, 100.0),
        ({"cpu": 1, "gpu": 2}, {"cpu": 4, "gpu": 4}, 1.0, 300.0),
        ({"cpu": 3, "gpu": 7}, None, 2.0, 100.0),
        ({"cpu": 3, "gpu": 7}, None, 0.5, 400.0),
    ],
)
def test_kueue_drs_vectors(
    usage: dict[str, int], incoming: dict[str, int] | None, weight: float, expected: float
) -> None:
    assert borrowed_share(borrowed(usage, incoming), LENDABLE, weight) == pytest.approx(expected)


def test_drs_is_zero_without_borrowing_and_infinite_for_weight_zero_borrowers() -> None:
    assert borrowed_share({"gpu": 0}, LENDABLE, 0.0) == 0.0
    assert borrowed_share({"gpu": 1}, LENDABLE, 0.0) == math.inf


@pytest.mark.parametrize(
    ("victim_after", "rule", "allowed"),
    [
        # B runs three 2-GPU jobs: DRS(B without one) = 200 -> the first rule evicts one.
        (200.0, PreemptionRule.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE, True),
        # B runs one 6-GPU job: DRS(B without it) = 0 -> refused by the first rule ...
        (0.0, PreemptionRule.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE, False),
        # ... but allowed by the second, since 200 < 400.
        (0.0, PreemptionRule.LESS_THAN_INITIAL_SHARE, True),
    ],
)
def test_digest_preemption_example(
    victim_after: float, rule: PreemptionRule, allowed: bool
) -> None:
    preemptor_with_job, victim_before = 200.0, 400.0
    assert may_preempt(rule, preemptor_with_job, victim_before, victim_after) is allowed


def test_equal_shares_never_preempt_under_the_initial_share_rule() -> None:
    assert not may_preempt(PreemptionRule.LESS_THAN_INITIAL_SHARE, 200.0, 200.0, 0.0)
