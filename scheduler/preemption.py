"""Choosing victims so that a blocked job can start.

Three cases, as in Kueue:

* **within the tenant** — a job may evict lower-priority jobs of its own tenant;
* **reclaim** — a tenant that stays within its nominal quota with the new job may evict jobs of
  tenants that borrow (in the same cohort tree), whatever their priority;
* **fair sharing** — a tenant that would borrow may evict other borrowers' jobs only when
  Kueue's rules hold: first *LessThanOrEqualToFinalShare* (DRS(X with W) <= DRS(Y without U)),
  and if that frees too little, *LessThanInitialShare* (DRS(X with W) < DRS(Y with U)). Victim
  tenants are taken from the highest DRS down. Either rule rules out eviction cycles.

Jobs that started less than ``min_runtime_seconds`` ago are protected (twice as long for each
earlier eviction of the job). Candidates are tried
cheapest first (lowest priority, most recently started: least work lost, fewest earlier
evictions); once enough is freed
the victims are revisited in reverse and every one whose eviction turns out unnecessary is kept,
which leaves the fewest victims. If even all candidates together do not free enough, nothing is
preempted. The search gives up after trying victims holding twice the job's GPUs plus one node's
worth (a bound on the cycle's cost; scattered small victims rarely make room for a gang). The
search works on the live state and always restores it before returning.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from quotas.drf import PreemptionRule, may_preempt
from scheduler.model import JobState, PreemptionReason
from scheduler.policy import Policy
from scheduler.state import Request, SchedulingState


@dataclass(frozen=True, slots=True)
class PreemptionPlan:
    victims: tuple[tuple[JobState, PreemptionReason], ...]
    placement: tuple[str, ...]


def _cheapest_first(job: JobState) -> tuple[int, float, int, str]:
    """Lowest priority, then least run time lost, then fewest evictions so far."""
    return (int(job.priority), -(job.admitted_at or 0.0), job.attempts, job.id)


def protected_until(job: JobState, policy: Policy) -> float:
    """When a running job may first be preempted: the minimum runtime, doubled for every earlier
    eviction so that a restarted job is not thrashed out again and again."""
    return (job.admitted_at or 0.0) + policy.min_runtime_seconds * 2.0 ** min(job.attempts, 20)


VICTIM_GPU_BUDGET_FACTOR = 2
VICTIM_GPU_BUDGET_SLACK = 8


class _Search:
    def __init__(self, job: JobState, request: Request, state: SchedulingState) -> None:
        self.job = job
        self.request = request
        self.state = state
        self.removed: list[tuple[JobState, PreemptionReason]] = []
        needed = job.demand.gpu * job.workers
        self.budget = VICTIM_GPU_BUDGET_FACTOR * needed + VICTIM_GPU_BUDGET_SLACK
        """GPUs of victims tried before giving up: victims scattered over many nodes rarely
        make room for a gang, and an unbounded search would dominate the cycle."""

    def exhausted(self) -> bool:
        return self.budget <= 0

    def fits(self) -> bool:
        return self.state.tree.fits(self.job.tenant, self.request) and self._placement() is not None

    def _placement(self) -> tuple[str, ...] | None:
        job = self.job
        return self.state.cluster.place(job.flavor, job.workers, job.demand)

    def evict(self, victim: JobState, reason: PreemptionReason) -> None:
        self.state.suspend_charges(victim)
        self.removed.append((victim, reason))
        self.budget -= victim.demand.gpu * victim.workers

    def undo_last(self) -> None:
        victim, _ = self.removed.pop()
        self.state.restore_charges(victim)
        self.budget += victim.demand.gpu * victim.workers

    def finish(self) -> PreemptionPlan | None:
        """Drop unnecessary victims, then restore the state; a plan only if the job fits."""
        if not self.removed or not self.fits():
            self.rollback()
            return None
        for index in range(len(self.removed) - 1, -1, -1):
            victim, _ = self.removed[index]
            self.state.restore_charges(victim)
            if self.fits():
                del self.removed[index]
            else:
                self.state.suspend_charges(victim)
        placement = self._placement()
        assert placement is not None
        plan = PreemptionPlan(tuple(self.removed), placement)
        self.rollback()
        return plan

    def rollback(self) -> None:
        while self.removed:
            self.undo_last()


def plan_preemption(
    job: JobState,
    request: Request,
    state: SchedulingState,
    policy: Policy,
    now: float,
    protected: Collection[str],
) -> PreemptionPlan | None:
    """Victims whose eviction lets ``job`` start, or ``None`` if no permitted set suffices."""
    tree = state.tree
    within_nominal = tree.within_nominal(job.tenant, request)
    borrowers = _borrowers(job, request, state, within_nominal)

    def eligible(running: JobState) -> bool:
        return running.id not in protected and protected_until(running, policy) <= now

    own = [
        running
        for running in state.running_of(job.tenant, job.flavor)
        if running.priority < job.priority and eligible(running)
    ]
    others = [
        running
        for tenant in sorted(borrowers)
        for running in state.running_of(tenant, job.flavor)
        if eligible(running)
    ]
    freeable = sum(v.total().gpu for v in own) + sum(v.total().gpu for v in others)
    if freeable + state.cluster.free_gpus(job.flavor) < job.total().gpu:
        return None
    own.sort(key=_cheapest_first)
    others.sort(key=_cheapest_first)
    if within_nominal:
        return _greedy(job, request, state, others, own)
    plan = _greedy(job, request, state, [], own) if own else None
    if plan is None and others:
        for rule in PreemptionRule:
            plan = _fair_share(job, request, state, own, others, rule)
            if plan is not None:
                break
    return plan


def _borrowers(
    job: JobState, request: Request, state: SchedulingState, within_nominal: bool
) -> set[str]:
    """Tenants whose jobs may be victims: borrowers of the job's flavor in the same tree.

    For fair-sharing preemption only borrowers above the preemptor's share with its job can
    qualify under either rule, so the others are left out from the start.
    """
    tree = state.tree
    root = tree.root_of(job.tenant)
    preemptor_share = 0.0 if within_nominal else tree.share(job.tenant, request)
    return {
        tenant
        for tenant in tree.borrowers(job.flavor)
        if tenant != job.tenant
        and tree.root_of(tenant) == root
        and (within_nominal or tree.share(tenant) > preemptor_share)
    }


def _greedy(
    job: JobState,
    request: Request,
    state: SchedulingState,
    borrowers: Sequence[JobState],
    own: Sequence[JobState],
) -> PreemptionPlan | None:
    search = _Search(job, request, state)
    candidates = [(v, PreemptionReason.RECLAIM_NOMINAL) for v in borrowers]
    candidates += [(v, PreemptionReason.IN_TENANT_PRIORITY) for v in own]
    for victim, reason in candidates:
        if search.fits() or search.exhausted():
            break
        still_borrowing = reason is PreemptionReason.IN_TENANT_PRIORITY or state.tree.is_borrowing(
            victim.tenant, job.flavor
        )
        if still_borrowing:
            search.evict(victim, reason)
    return search.finish()


def _fair_share(
    job: JobState,
    request: Request,
    state: SchedulingState,
    own: Sequence[JobState],
    others: Sequence[JobState],
    rule: PreemptionRule,
) -> PreemptionPlan | None:
    tree = state.tree
    search = _Search(job, request, state)
    for victim in own:
        search.evict(victim, PreemptionReason.IN_TENANT_PRIORITY)
    by_tenant: dict[str, list[JobState]] = {}
    for victim in others:
        by_tenant.setdefault(victim.tenant, []).append(victim)
    preemptor_share = tree.share(job.tenant, request)
    # A tenant's DRS depends only on its own usage: keep each one current as its jobs go.
    shares = {tenant: tree.share(tenant) for tenant in by_tenant}
    while not search.exhausted() and not search.fits():
        borrowers = [t for t, vs in by_tenant.items() if vs and tree.is_borrowing(t, job.flavor)]
        if not borrowers:
            break
        tenant = max(borrowers, key=lambda t: (shares[t], t))
        victim = by_tenant[tenant][0]
        search.evict(victim, PreemptionReason.FAIR_SHARE)
        after = tree.share(tenant)
        if may_preempt(rule, preemptor_share, shares[tenant], after):
            by_tenant[tenant].pop(0)
            shares[tenant] = after
        else:
            search.undo_last()
            del by_tenant[tenant]
    return search.finish()
