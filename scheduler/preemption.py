"""Choosing victims so that a blocked job can start, and whether it is worth it.

Three cases, as in Kueue, each with a configurable mode (``Never`` / ``LowerPriority`` /
``Any``, see :class:`scheduler.policy.Policy`):

* **within the tenant** (Kueue's ``withinClusterQueue``) — a job may evict lower-priority jobs of
  its own tenant (``Any`` also allows equal-priority jobs submitted later);
* **reclaim** (``reclaimWithinCohort``) — a tenant that stays within its nominal quota with the
  new job may take it back from tenants that borrow in the same cohort tree. Victims come from
  the borrower with the highest share (DRS) first, and only while that tenant still borrows;
* **fair sharing** — a tenant that would borrow may evict other borrowers' jobs only when one of
  Kueue's rules holds *for that candidate job*: first *LessThanOrEqualToFinalShare*
  (``DRS(X with W) <= DRS(Y without U)``), and if no set of victims suffices,
  *LessThanInitialShare* (``DRS(X with W) < DRS(Y with U)``). Candidates come from the tenant
  with the highest DRS first; a candidate that fails the rule is skipped, not its whole tenant
  (so a 1-GPU job of a tenant may go where its 8-GPU job may not). Either rule rules out eviction
  cycles.

**Cost.** Eviction throws work away: the GPU-seconds each victim ran since its last checkpoint
(since it started, for a job that does not checkpoint, :func:`scheduler.model.lost_gpu_seconds`).
Candidates are tried cheapest first (lowest priority, least work lost, fewest earlier evictions);
once enough is freed, victims turn out unnecessary are kept, leaving the fewest. The plan is
dropped when the work it throws away exceeds ``preemption_cost_factor`` x what waiting would
cost the preemptor: its GPUs x the time until enough capacity frees up by itself, projected from
running jobs' time limits (unknown limits: waiting is taken to be endless).

**Protection.** A job that started less than ``min_runtime_seconds`` ago is not a candidate
(twice as long for every earlier eviction), nor is a job already evicted
``max_evictions_per_day`` times in the last 24 hours.

**Cost of the search.** It gives up after trying victims holding twice the job's GPUs plus one
node's worth. A search that failed is remembered in the long-lived state
(:attr:`scheduler.state.SchedulingState.failed_preemptions`) until something it depended on can
have changed: a job started or stopped, a protected candidate became eligible, or a
checkpointing candidate saved its work. The search works on the live state and always restores
it before returning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from quotas.drf import PreemptionRule, may_preempt
from scheduler.model import JobState, PreemptionReason, lost_gpu_seconds
from scheduler.policy import Policy, PreemptionMode
from scheduler.state import Request, SchedulingState, job_request

EVICTION_WINDOW_SECONDS = 86400.0
VICTIM_GPU_BUDGET_FACTOR = 2
VICTIM_GPU_BUDGET_SLACK = 8


@dataclass(frozen=True, slots=True)
class PreemptionPlan:
    victims: tuple[tuple[JobState, PreemptionReason], ...]
    placement: tuple[str, ...]
    lost_gpu_seconds: float = 0.0


def protected_until(job: JobState, policy: Policy) -> float:
    """When a running job may first be preempted: the minimum runtime, doubled for every earlier
    eviction so that a restarted job is not thrashed out again and again."""
    return (job.admitted_at or 0.0) + policy.min_runtime_seconds * 2.0 ** min(job.attempts, 20)


def evictable_from(job: JobState, policy: Policy, now: float) -> float:
    """The earliest instant at which ``job`` may be evicted (``now`` or earlier: it may)."""
    at = protected_until(job, policy)
    recent = sorted(t for t in job.evicted_at if now - t < EVICTION_WINDOW_SECONDS)
    if len(recent) >= policy.max_evictions_per_day:
        over = len(recent) - policy.max_evictions_per_day
        at = max(at, recent[over] + EVICTION_WINDOW_SECONDS)
    return at


def _cached_evictable_from(
    state: SchedulingState, job: JobState, policy: Policy, now: float
) -> float:
    """:func:`evictable_from`, remembered per running job in the long-lived state: every search
    looks at every running job of its flavor. The answer does not depend on ``now`` once
    computed: the day's cap lifts when the eviction it hinges on leaves the window, which is
    the instant it names, whether or not older ones have left since."""
    cached = state.evictable_at.get(job.id)
    if cached is None or cached[0] is not job or cached[1] is not policy:
        cached = state.evictable_at[job.id] = (job, policy, evictable_from(job, policy, now))
    return cached[2]


def _next_checkpoint(job: JobState, now: float) -> float:
    interval = job.checkpoint_interval_seconds
    if not interval or job.admitted_at is None:
        return math.inf
    ran = max(0.0, now - job.admitted_at)
    return job.admitted_at + (ran // interval + 1) * interval


def _cost_key(costs: Mapping[str, float]) -> Callable[[JobState], tuple[int, float, int, str]]:
    def key(job: JobState) -> tuple[int, float, int, str]:
        return (int(job.priority), costs[job.id], job.attempts, job.id)

    return key


def _mode_allows(mode: PreemptionMode, victim: JobState, preemptor: JobState) -> bool:
    if mode == "Never":
        return False
    if victim.priority < preemptor.priority:
        return True
    return mode == "Any"


def _within_tenant_allows(mode: PreemptionMode, victim: JobState, preemptor: JobState) -> bool:
    """Kueue's ``LowerOrNewerEqualPriority`` for ``Any``: never an older job of equal priority."""
    if not _mode_allows(mode, victim, preemptor):
        return False
    if victim.priority < preemptor.priority:
        return True
    return (victim.submitted_at, victim.id) > (preemptor.submitted_at, preemptor.id)


class _Search:
    def __init__(
        self,
        job: JobState,
        request: Request,
        state: SchedulingState,
        costs: Mapping[str, float],
        lost_budget: float,
    ):
        self.job = job
        self.request = request
        self.state = state
        self.costs = costs
        self.removed: list[tuple[JobState, PreemptionReason]] = []
        needed = job.demand.gpu * job.workers
        self.budget = VICTIM_GPU_BUDGET_FACTOR * needed + VICTIM_GPU_BUDGET_SLACK
        self.lost = 0.0
        self.lost_budget = lost_budget

    def exhausted(self) -> bool:
        """Too many GPUs tried, or already more work thrown away than the job may cost (victims
        come cheapest first, so the search gives up rather than look for a cheaper set)."""
        return self.budget <= 0 or self.lost > self.lost_budget

    def fits(self) -> bool:
        return self.state.tree.fits(self.job.tenant, self.request) and self._placement() is not None

    def _placement(self) -> tuple[str, ...] | None:
        job = self.job
        return self.state.cluster.place(job.flavor, job.workers, job.demand)

    def evict(self, victim: JobState, reason: PreemptionReason) -> None:
        self.state.suspend_charges(victim)
        self.removed.append((victim, reason))
        self.budget -= victim.demand.gpu * victim.workers
        self.lost += self.costs[victim.id]

    def undo_last(self) -> None:
        victim, _ = self.removed.pop()
        self.state.restore_charges(victim)
        self.budget += victim.demand.gpu * victim.workers
        self.lost -= self.costs[victim.id]

    def finish(self) -> PreemptionPlan | None:
        """Keep every victim that turns out unnecessary, then restore the state."""
        if not self.removed or self.lost > self.lost_budget or not self.fits():
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
        lost = sum(self.costs[v.id] for v, _ in self.removed)
        plan = PreemptionPlan(tuple(self.removed), placement, lost)
        self.rollback()
        return plan

    def rollback(self) -> None:
        while self.removed:
            self.undo_last()


@dataclass(slots=True)
class _Candidates:
    own: list[JobState]
    others: dict[str, list[JobState]]
    revisit_at: float
    """When a protected candidate becomes eligible or a checkpointing one saves its work."""


def _candidates(
    job: JobState,
    request: Request,
    state: SchedulingState,
    policy: Policy,
    now: float,
    protected: Collection[str],
    within_nominal: bool,
) -> _Candidates:
    tree = state.tree
    revisit_at = math.inf

    def eligible(running: JobState) -> bool:
        nonlocal revisit_at
        from_ = _cached_evictable_from(state, running, policy, now)
        if from_ > now:
            revisit_at = min(revisit_at, from_)
            return False
        if running.id in protected:  # a victim, overdue, or admitted this cycle
            return False
        revisit_at = min(revisit_at, _next_checkpoint(running, now))
        return True

    own = [
        running
        for running in state.running_of(job.tenant, job.flavor)
        if _within_tenant_allows(policy.within_tenant, running, job) and eligible(running)
    ]
    others: dict[str, list[JobState]] = {}
    if within_nominal and policy.reclaim_within_cohort == "Never":
        return _Candidates(own, others, revisit_at)
    root = tree.root_of(job.tenant)
    for tenant in sorted(tree.borrowers(job.flavor)):
        if tenant == job.tenant or tree.root_of(tenant) != root:
            continue
        jobs = [
            running
            for running in state.running_of(tenant, job.flavor)
            if (not within_nominal or _mode_allows(policy.reclaim_within_cohort, running, job))
            and eligible(running)
        ]
        if jobs:
            others[tenant] = jobs
    return _Candidates(own, others, revisit_at)


def _no_victim_allowed(
    job: JobState, request: Request, state: SchedulingState, policy: Policy
) -> bool:
    """For a job that would borrow: whether no running job could ever be its victim, whatever
    its protection: none of its own tenant's is allowed by ``within_tenant``, and every other
    borrower of its cohort tree has a share below DRS(its tenant with the job), which both
    fair-sharing rules refuse. Neither depends on time, only on what runs, so the search is
    skipped and its failure remembered until something starts or stops; most searches of an
    overloaded cluster end here."""
    tree = state.tree
    own = state.running_of(job.tenant, job.flavor)
    if any(_within_tenant_allows(policy.within_tenant, running, job) for running in own):
        return False
    preemptor_share = tree.share(job.tenant, request)
    root = tree.root_of(job.tenant)
    return not any(
        tenant != job.tenant
        and tree.root_of(tenant) == root
        and tree.share(tenant) >= preemptor_share
        and any(True for _ in state.running_of(tenant, job.flavor))
        for tenant in tree.borrowers(job.flavor)
    )


def _cheapest_possible(
    candidates: Iterable[tuple[float, int]], gpus_short: int
) -> tuple[float, int]:
    """A lower bound on the work lost to free ``gpus_short`` GPUs from candidates of (work
    lost, GPUs), and how many can be freed."""
    lost = 0.0
    freed = 0
    for cost, gpus in sorted(candidates):
        if freed >= gpus_short:
            break
        lost += cost
        freed += gpus
    return lost, freed


def plan_preemption(
    job: JobState,
    request: Request,
    state: SchedulingState,
    policy: Policy,
    now: float,
    protected: Collection[str],
    wait_seconds: float = math.inf,
) -> PreemptionPlan | None:
    """Victims whose eviction lets ``job`` start, or ``None`` if no permitted, affordable set
    suffices. ``wait_seconds``: how long ``job`` would wait without preempting."""
    tree = state.tree
    within_nominal = tree.within_nominal(job.tenant, request)
    if not within_nominal and _no_victim_allowed(job, request, state, policy):
        state.remember_failed_preemption(job, math.inf, math.inf)
        return None
    found = _candidates(job, request, state, policy, now, protected, within_nominal)
    everyone = found.own + [v for vs in found.others.values() for v in vs]
    needed = job.total().gpu
    short = max(1, needed - state.cluster.free_gpus(job.flavor))
    costs: dict[str, float] = {}
    sizes: list[tuple[float, int]] = []
    for victim in everyone:
        gpus = victim.demand.gpu * victim.workers
        cost = costs[victim.id] = lost_gpu_seconds(victim, now)
        sizes.append((cost, gpus))
    cheapest, freeable = _cheapest_possible(sizes, short)
    budget = preemption_budget(job, policy, wait_seconds)
    if freeable < short:
        state.remember_failed_preemption(job, found.revisit_at, math.inf)
        return None
    if cheapest > budget:
        state.remember_failed_preemption(job, found.revisit_at, cheapest)
        return None
    key = _cost_key(costs)
    found.own.sort(key=key)
    for victims in found.others.values():
        victims.sort(key=key)
    plan: PreemptionPlan | None
    if within_nominal:
        plan = _reclaim(job, request, state, found, costs, budget)
    else:
        plan = _search(job, request, state, found.own, costs, budget, None) if found.own else None
        if plan is None and found.others:
            for rule in PreemptionRule:
                picker = _fair_share(found, rule)
                plan = _search(job, request, state, found.own, costs, budget, picker)
                if plan is not None:
                    break
    if plan is None or plan.lost_gpu_seconds > budget:
        cost = math.inf if plan is None else plan.lost_gpu_seconds
        state.remember_failed_preemption(job, found.revisit_at, cost)
        return None
    return plan


def preemption_budget(job: JobState, policy: Policy, wait_seconds: float) -> float:
    """The most work (GPU-seconds) evicting others for ``job`` may throw away: what waiting
    ``wait_seconds`` would cost it, times the policy's factor."""
    if wait_seconds <= 0:
        return 0.0
    return policy.preemption_cost_factor * job.total().gpu * wait_seconds


Picker = Callable[["_Search"], Iterator[None]]
"""Evicts candidates one step at a time (yielding after each) until the search stops it."""


def _search(
    job: JobState,
    request: Request,
    state: SchedulingState,
    own: Sequence[JobState],
    costs: Mapping[str, float],
    lost_budget: float,
    picker: Picker | None,
) -> PreemptionPlan | None:
    """Evict ``own`` candidates first, then what ``picker`` proposes, until ``job`` fits."""
    search = _Search(job, request, state, costs, lost_budget)
    for victim in own:
        if search.fits() or search.exhausted():
            break
        search.evict(victim, PreemptionReason.IN_TENANT_PRIORITY)
    if picker is not None and not search.fits():
        for _ in picker(search):
            if search.fits() or search.exhausted():
                break
    return search.finish()


class _Borrowers:
    """Other tenants' candidate victims, by tenant, cheapest first, with each tenant's share
    (DRS). Evicting a job changes only its own tenant's share, so only that one is recomputed."""

    def __init__(self, state: SchedulingState, pools: dict[str, list[JobState]], flavor: str):
        self.tree = state.tree
        self.flavor = flavor
        self.pools = {t: list(vs) for t, vs in pools.items()}
        self.shares = {t: self.tree.share(t) for t in self.pools}

    def highest(self) -> str | None:
        """The borrowing tenant with candidates left and the highest share (ties: by name)."""
        best: tuple[float, str] | None = None
        for tenant, victims in self.pools.items():
            if victims and self.tree.is_borrowing(tenant, self.flavor):
                key = (self.shares[tenant], tenant)
                if best is None or key > best:
                    best = key
        return None if best is None else best[1]

    def take(self, tenant: str) -> JobState:
        return self.pools[tenant].pop(0)

    def evicted(self, tenant: str, share: float | None = None) -> None:
        """Record that one of ``tenant``'s jobs went: its share is now ``share`` when the caller
        computed it already (the share with the victim's charges released)."""
        self.shares[tenant] = self.tree.share(tenant) if share is None else share


def _reclaim(
    job: JobState,
    request: Request,
    state: SchedulingState,
    found: _Candidates,
    costs: Mapping[str, float],
    lost_budget: float,
) -> PreemptionPlan | None:
    """Take nominal quota back from borrowers, highest share first, before the own tenant's."""
    borrowers = _Borrowers(state, found.others, job.flavor)
    search = _Search(job, request, state, costs, lost_budget)
    while not search.fits() and not search.exhausted():
        tenant = borrowers.highest()
        if tenant is None:
            break
        search.evict(borrowers.take(tenant), PreemptionReason.RECLAIM_NOMINAL)
        borrowers.evicted(tenant)
    for victim in found.own:
        if search.fits() or search.exhausted():
            break
        search.evict(victim, PreemptionReason.IN_TENANT_PRIORITY)
    return search.finish()


def _fair_share(found: _Candidates, rule: PreemptionRule) -> Picker:
    """Victims from the highest-share borrower first, each judged by ``rule`` on its own.

    A candidate's verdict is worked out from the shares before anything is evicted, so
    candidates the rule refuses cost no what-if. A victim tenant's share only falls when one of
    its jobs goes, so once the highest-share borrower fails the rule even with its share
    unchanged, every other borrower (whose share is no higher) fails too and the search stops.
    """

    def pick(search: _Search) -> Iterator[None]:
        tree = search.state.tree
        preemptor_share = tree.share(search.job.tenant, search.request)
        borrowers = _Borrowers(search.state, found.others, search.job.flavor)
        while (tenant := borrowers.highest()) is not None:
            before = borrowers.shares[tenant]
            if not may_preempt(rule, preemptor_share, before, before):
                return
            victim = borrowers.take(tenant)
            after = tree.share(tenant, _released(victim))
            if may_preempt(rule, preemptor_share, before, after):
                search.evict(victim, PreemptionReason.FAIR_SHARE)
                borrowers.evicted(tenant, after)
                yield None
            elif search.exhausted():
                yield None

    return pick


def _released(job: JobState) -> Request:
    """A running job's charges as a negative request: the tree's view once it is gone."""
    return {fr: -amount for fr, amount in job_request(job).items()}
