"""Dominant resource shares: DRF (Ghodsi et al.) and Kueue's share of what is borrowed.

* :func:`dominant_share` and :func:`progressive_filling` implement classic DRF, used to explain
  and test the notion of a dominant resource.
* :func:`borrowed_share` is Kueue's fair-sharing value (DRS): the largest fraction, per mille, of
  the parent's lendable amount of any resource that a tenant borrows, divided by its weight. A
  tenant that borrows nothing has DRS 0; a tenant with weight 0 that borrows counts as infinite.
* :func:`may_preempt` encodes Kueue's two rules for evicting a borrower's job in favour of another
  borrower. Both compare the preemptor's share *after* admission with the victim tenant's share,
  which is what rules out two jobs evicting each other back and forth.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence

SHARE_SCALE = 1000.0


def dominant_share(allocation: Mapping[str, float], capacity: Mapping[str, float]) -> float:
    """``max_r allocation[r] / capacity[r]`` over resources with positive capacity."""
    shares = [allocation.get(r, 0.0) / c for r, c in capacity.items() if c > 0]
    return max(shares, default=0.0)


def progressive_filling(
    capacity: Mapping[str, float],
    task_demands: Sequence[Mapping[str, float]],
    weights: Sequence[float] | None = None,
) -> list[int]:
    """Tasks launched per user by DRF: always serve the lowest weighted dominant share next.

    Users whose next task no longer fits drop out; the result is the task count per user.
    """
    weights = weights or [1.0] * len(task_demands)
    used = dict.fromkeys(capacity, 0.0)
    counts = [0] * len(task_demands)
    active = set(range(len(task_demands)))
    while active:
        shares = {u: _user_share(u, counts, task_demands, capacity, weights) for u in active}
        user = min(active, key=lambda u: (shares[u], u))
        demand = task_demands[user]
        if any(used[r] + demand.get(r, 0.0) > capacity[r] for r in capacity):
            active.discard(user)
            continue
        for r in capacity:
            used[r] += demand.get(r, 0.0)
        counts[user] += 1
    return counts


def _user_share(
    user: int,
    counts: Sequence[int],
    demands: Sequence[Mapping[str, float]],
    capacity: Mapping[str, float],
    weights: Sequence[float],
) -> float:
    allocation = {r: counts[user] * demands[user].get(r, 0.0) for r in capacity}
    return dominant_share(allocation, capacity) / weights[user]


def borrowed_share(
    borrowed: Mapping[str, float], lendable: Mapping[str, float], weight: float
) -> float:
    """Kueue's DRS: ``max_r borrowed[r] * 1000 / lendable[r]``, divided by the weight."""
    ratios = [
        amount * SHARE_SCALE / lendable[r]
        for r, amount in borrowed.items()
        if amount > 0 and lendable.get(r, 0) > 0
    ]
    if not ratios:
        return 0.0
    if weight <= 0:
        return math.inf
    return max(ratios) / weight


class PreemptionRule(enum.Enum):
    """Kueue's fair-sharing preemption strategies, tried in this order."""

    LESS_THAN_OR_EQUAL_TO_FINAL_SHARE = "LessThanOrEqualToFinalShare"
    LESS_THAN_INITIAL_SHARE = "LessThanInitialShare"


def may_preempt(
    rule: PreemptionRule,
    preemptor_share_with_job: float,
    victim_share_before: float,
    victim_share_after: float,
) -> bool:
    """Whether tenant X may evict a job of tenant Y to admit its own job under ``rule``.

    ``preemptor_share_with_job`` is DRS(X with the new job); ``victim_share_before`` and
    ``victim_share_after`` are DRS(Y with and without the victim).
    """
    if rule is PreemptionRule.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE:
        return preemptor_share_with_job <= victim_share_after
    return preemptor_share_with_job < victim_share_before
