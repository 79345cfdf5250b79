"""One scheduling cycle: a pure function from a snapshot and a policy to decisions.

The cycle walks the queue in policy order (:mod:`scheduler.ordering`) and, for each job:

1. holds it back if its requeue backoff has not passed, and leaves it waiting
   (``NoNodesForFlavor``) if no node of the cluster belongs to its flavor;
2. checks its whole gang against the tenant's quota (nominal plus permitted borrowing,
   :mod:`quotas.tree`), then against a reservation made for an earlier job (EASY backfill,
   :mod:`scheduler.backfill`), then places all its workers on free nodes of its flavor
   (:mod:`scheduler.placement`); if everything fits it is admitted and charged at once, so later
   jobs see the reduced quota and capacity;
3. otherwise may plan a preemption (:mod:`scheduler.preemption`). The preemptor is not admitted in
   the same cycle: the victims' pods must go first. For the rest of the cycle the victims count as
   gone and the preemptor as running, and the nodes involved are closed; the next cycle serves it
   before anyone else (the loop passes it back in ``Snapshot.preempting``), so nobody else takes
   the capacity its victims freed;
4. otherwise records why it waits and where it stands.

Before that, held jobs, jobs of stopped tenants and flavors and jobs waiting for dependencies are
set aside (:mod:`scheduler.gates`), running jobs of draining tenants and flavors are stopped, and
a job that would take its user past a per-user limit (or its array past its parallelism) waits
with ``UserLimit`` (``ArrayLimit``) before quota is even looked at (:mod:`scheduler.limits`).

Running jobs past their time limit fail with ``DeadlineExceeded``; they keep their resources until
their pods are gone and are never chosen as victims.

Everything works on a :class:`scheduler.state.SchedulingState`; :func:`run_cycle` builds one from
the snapshot and discards it, the simulator keeps one alive across cycles (:func:`schedule`).
"""

from __future__ import annotations

import functools
import gc
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import compress, repeat
from operator import attrgetter
from typing import ParamSpec, TypeVar

from quotas.tree import FlavorResource
from scheduler import explain
from scheduler.backfill import Reservation, reserve
from scheduler.gates import drained, gate
from scheduler.limits import Limiter
from scheduler.model import (
    GPU,
    NO_CONTROLS,
    Admit,
    CycleResult,
    Fail,
    JobState,
    Pending,
    Preempt,
    QueueControls,
    Snapshot,
    UsageState,
)
from scheduler.ordering import Factors, FairOrdering, FifoOrdering, Smallest, smallest_jobs
from scheduler.policy import Policy
from scheduler.preemption import PreemptionPlan, plan_preemption, preemption_budget
from scheduler.state import Request, SchedulingState

BACKOFF = "Backoff"
QUOTA_EXCEEDED = "QuotaExceeded"
INSUFFICIENT_CAPACITY = "InsufficientCapacity"
WAITING_FOR_RESERVATION = "WaitingForReservation"
PREEMPTING = "Preempting"
UNKNOWN_TENANT = "UnknownTenant"
DEADLINE_EXCEEDED = "DeadlineExceeded"
BEHIND = "WaitingBehindTenantQueue"
NO_NODES_FOR_FLAVOR = "NoNodesForFlavor"
"""No node of the cluster belongs to the job's flavor (its nodes were removed, or the flavor
was created before they joined): the job waits, with no preemption and no reservation."""
EXPLAINED_PER_TENANT = 10
"""Jobs of each tenant explained one by one per cycle; the rest of a tenant's queue, once
nothing more of it can start, gets its position and a shared reason (``GET /v1/jobs/{id}``
shows them; the queue view lists them)."""


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A queued job's place in the order and the factors that put it there (like ``sprio``)."""

    job_id: str
    position: int
    tenant_position: int
    factors: Mapping[str, float]


@dataclass(slots=True)
class CycleOutcome:
    result: CycleResult
    queue: list[QueueEntry] = field(default_factory=list)
    tenants: dict[str, str] = field(default_factory=dict)


def run_cycle(snapshot: Snapshot, policy: Policy) -> CycleResult:
    """Decide admissions, preemptions and failures for one snapshot."""
    return _outcome(snapshot, policy).result


def explain_queue(snapshot: Snapshot, policy: Policy, tenant: str | None) -> list[QueueEntry]:
    """The queue in cycle order with each job's ordering factors, optionally for one tenant."""
    outcome = _outcome(snapshot, policy, collect_queue=True)
    return [e for e in outcome.queue if tenant is None or outcome.tenants[e.job_id] == tenant]


def _outcome(snapshot: Snapshot, policy: Policy, collect_queue: bool = False) -> CycleOutcome:
    state = SchedulingState(
        snapshot.tenants,
        snapshot.cohorts,
        snapshot.nodes,
        snapshot.running,
        policy.topology_label,
    )
    return schedule(
        state,
        snapshot.queued,
        snapshot.now,
        policy,
        snapshot.usage,
        snapshot.preempting,
        collect_queue=collect_queue,
        controls=snapshot.controls,
    )


_TENANT = attrgetter("tenant")
_FLAVOR = attrgetter("flavor")
_ID = attrgetter("id")
_SUBMITTED_AT = attrgetter("submitted_at")

P = ParamSpec("P")
R = TypeVar("R")


def gc_paused(function: Callable[P, R]) -> Callable[P, R]:
    """Pause the garbage collector while ``function`` runs: a cycle over a deep queue allocates
    one small tuple per queued job and frees almost nothing, and the collector's passes over
    those young objects would cost more than the cycle itself. (The API's queue explanation
    pauses it for the same reason around its snapshot too: ``api.routers.queue``.)"""

    @functools.wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused


@gc_paused
def schedule(
    state: SchedulingState,
    queued: Sequence[JobState],
    now: float,
    policy: Policy,
    usage: UsageState,
    preempting: Collection[str] = frozenset(),
    explain_all: bool = True,
    collect_queue: bool = False,
    controls: QueueControls = NO_CONTROLS,
) -> CycleOutcome:
    """Run the cycle on a live state; admissions are applied to ``state``.

    With ``explain_all=False`` (the simulator) no pending reasons or queue entries are built and
    the walk stops as soon as nothing more can start. ``collect_queue`` records each job's
    ordering factors (:func:`explain_queue`). ``controls``: holds, stops, limits and the
    status of the jobs others depend on (:mod:`scheduler.gates`, :mod:`scheduler.limits`).
    """
    cycle = _Cycle(state, now, policy, explain_all, collect_queue)
    failed = cycle.fail_overdue()
    all_queued = queued
    gated = gate(queued, controls)
    queued = gated.eligible
    failed += gated.failed
    cycle.drain(drained(state.running.values(), controls))
    cycle.limiter = Limiter(controls, state.running)
    configured = set(state.tree.tenant_names())
    if configured.issuperset(map(_TENANT, queued)):  # one C-level pass in the common case
        known: Sequence[JobState] = queued
        unknown: list[JobState] = []
    else:
        known = [j for j in queued if j.tenant in configured]
        unknown = [j for j in queued if j.tenant not in configured]
    first = sorted(
        (j for j in known if j.id in preempting) if preempting else (),
        key=lambda j: (j.submitted_at, j.id),
    )
    starving = _starving(known, preempting, now, policy)
    cycle.starving.update(j.id for j in starving)
    first += starving
    served_first = {j.id for j in first}
    rest = [j for j in known if j.id not in served_first] if served_first else known
    ordering: FifoOrdering | FairOrdering
    if policy.kind == "fifo":
        ordering = FifoOrdering(rest, now)
    else:
        ordering = FairOrdering(
            rest, state.tree, state.entitlement(), usage, policy, now, collect_queue
        )
    for job in first:
        factors = {"preempting": 1.0} if job.id in preempting else {"starving": 1.0}
        ordering_age = {"age_seconds": now - job.submitted_at}
        cycle.consider(job, factors | ordering_age)
    if not explain_all:
        bounds = ordering.bounds if isinstance(ordering, FairOrdering) else smallest_jobs(rest)
        cycle.watch(list(bounds.items()))
    while not cycle.saturated():
        step = ordering.next()
        if step is None:
            break
        job, factors = step
        if isinstance(ordering, FairOrdering) and cycle.written_off(
            job, ordering.smallest(job.tenant)
        ):
            cycle.pend_behind(job, factors)
            ordering.charged(job, False)
            continue
        started = cycle.consider(job, factors)
        if (
            not started
            and isinstance(ordering, FairOrdering)
            and cycle.nothing_more_for(job.tenant, ordering.smallest(job.tenant))
        ):
            cycle.defer(job.tenant, ordering.retire(job), ordering.smallest(job.tenant))
        else:
            ordering.charged(job, started)
    cycle.pend_deferred()
    if explain_all:
        cycle.pend_unknown(unknown)
        cycle.pend_gated(gated.waiting)
    cycle.release_holds()
    result = CycleResult(
        admitted=tuple(cycle.admitted),
        preempted=tuple(cycle.preempted),
        failed=tuple(failed),
        pending=tuple(cycle.pending),
    )
    tenants = {j.id: j.tenant for j in all_queued} if collect_queue else {}
    return CycleOutcome(result, cycle.queue, tenants)


Shape = tuple[str, int, int, int, int]
"""(flavor, workers, GPUs, millicores, bytes per worker): plain ints hash fast."""


def shape_of(job: JobState) -> Shape:
    demand = job.demand
    return (job.flavor, job.workers, demand.gpu, demand.cpu_milli, demand.memory_bytes)


def _starving(
    queued: Sequence[JobState],
    preempting: Collection[str],
    now: float,
    policy: Policy,
) -> list[JobState]:
    """Per flavor, the oldest job waiting longer than the starvation limit: it is served first
    and, with backfill, gets the flavor's reservation, so it starts in bounded time.

    Fair ordering alone lets small jobs overtake a wide gang forever: they take every GPU that
    frees up. Only one job per flavor at a time, or the queue would turn into FIFO.
    """
    limit = policy.starvation_seconds
    if limit is None:
        return []
    oldest: dict[str, JobState] = {}
    cutoff = now - limit
    if min(map(_SUBMITTED_AT, queued), default=math.inf) > cutoff:  # one C-level pass
        return []
    for job in compress(queued, map(cutoff.__ge__, map(_SUBMITTED_AT, queued))):
        if job.id in preempting or (job.not_before is not None and job.not_before > now):
            continue
        current = oldest.get(job.flavor)
        if current is None or (job.submitted_at, job.id) < (current.submitted_at, current.id):
            oldest[job.flavor] = job
    return sorted(oldest.values(), key=lambda j: (j.submitted_at, j.id))


_QuotaMemo = tuple[Request, tuple[FlavorResource, str] | None, dict[Shape, str]]
"""The smallest request found too big, the quota situation then, and messages by job shape."""


def _at_least(request: Request, other: Request) -> bool:
    """Whether ``request`` asks for at least as much as ``other`` of everything."""
    if len(other) == 1:
        for fr, amount in other.items():
            return request.get(fr, 0) >= amount
    return all(request.get(fr, 0) >= amount for fr, amount in other.items())


class _Cycle:
    def __init__(
        self, state: SchedulingState, now: float, policy: Policy, explain: bool, collect: bool
    ) -> None:
        self.state = state
        self.collect = collect
        self.now = now
        self.policy = policy
        self.explain = explain
        self.admitted: list[Admit] = []
        self.preempted: list[Preempt] = []
        self.pending: list[Pending] = []
        self.queue: list[QueueEntry] = []
        self.protected: set[str] = set()
        self.reservations: dict[str, Reservation] = {}
        self.unplaceable: set[Shape] = set()
        self.capacity_messages: dict[tuple[object, ...], str] = {}
        self.behind_messages: dict[tuple[str, str], str] = {}
        self.closed_flavors: set[tuple[str, str]] = set()
        """(tenant, flavor) found :meth:`_flavor_closed` this cycle."""
        self.quota_blocked: dict[tuple[str, str], _QuotaMemo] = {}
        self.deferred: list[tuple[str, list[JobState], Collection[str]]] = []
        self.starving: set[str] = set()
        """Jobs past the starvation limit: they reserve capacity even when their quota, not
        the free nodes, holds them back (the GPUs that free up bring the cohort's quota)."""
        self.preemption_tried: set[tuple[str, str]] = set()
        """(tenant, flavor) whose first blocked job this cycle has had its preemption search:
        as in Kueue, only a tenant's head may preempt, so its later jobs never jump it."""
        self.waiting_for_capacity: dict[str, int] = {}
        """GPUs per flavor that jobs considered so far this cycle wait for (blocked by capacity,
        or within their nominal quota but lent out): a later job's wait starts after theirs."""
        self.closed_nodes: list[str] = []
        self.holds: list[tuple[JobState, Request, PreemptionPlan]] = []
        self.preemption_attempts = policy.max_preemption_attempts if policy.preempts else 0
        self.position = 0
        self.tenant_positions: dict[str, int] = {}
        self.limiter: Limiter | None = None
        self.open_pairs: list[tuple[tuple[str, str], Smallest]] = []

    # -- bookkeeping -----------------------------------------------------------------------

    def fail_overdue(self) -> list[Fail]:
        failed = []
        for job in self.state.overdue(self.now):
            self.protected.add(job.id)
            message = f"ran longer than its limit of {job.max_runtime_seconds} s"
            failed.append(Fail(job.id, DEADLINE_EXCEEDED, message))
        return failed

    def drain(self, evictions: list[Preempt]) -> None:
        """Stop running jobs of draining tenants and flavors; they hold their nodes until their
        pods are gone, so nothing is released this cycle."""
        for eviction in evictions:
            if eviction.job_id not in self.protected:
                self.protected.add(eviction.job_id)
                self.preempted.append(eviction)

    def watch(self, bounds: list[tuple[tuple[str, str], Smallest]]) -> None:
        """In simulation, the queue's (tenant, flavor) pairs with lower bounds on their jobs,
        for :meth:`saturated`."""
        self.open_pairs = bounds

    def saturated(self) -> bool:
        """In simulation, stop once every (tenant, flavor) of the queue is
        :meth:`_flavor_closed`: its head has had its chance to preempt, and free capacity or
        quota cannot hold even its smallest job. Both only shrink within a cycle, so every job
        not looked at would have waited, and with every head tried no further preemption search
        (which reads what earlier jobs wait for) could run. Closed pairs stay closed, so each
        call looks only at the first still open."""
        if self.explain:
            return False
        pairs = self.open_pairs
        while pairs:
            (tenant, flavor), least = pairs[-1]
            if not self._flavor_closed(tenant, flavor, least):
                return False
            pairs.pop()
        return True

    def release_holds(self) -> None:
        """Undo the cycle-local accounting of preemptions (matters to a long-lived state)."""
        state = self.state
        if self.holds:
            state.touch()
        for job, request, plan in reversed(self.holds):
            state.cluster.release(plan.placement, job.demand)
            state.tree.remove(job.tenant, request)
            for victim, _ in plan.victims:
                state.restore_charges(victim)
        for name in self.closed_nodes:
            state.cluster.reopen(name)

    def nothing_more_for(self, tenant: str, smallest: Mapping[str, Smallest]) -> bool:
        """Whether none of the tenant's further jobs can start this cycle, once its first
        :data:`EXPLAINED_PER_TENANT` jobs have been explained (never in simulation, where
        the queue is a short window anyway): every flavor it has jobs of is
        :meth:`_flavor_closed` to it. Its remaining jobs are then listed without a look at
        each."""
        if not self.explain or self.tenant_positions.get(tenant, 0) < EXPLAINED_PER_TENANT:
            return False
        return all(self._flavor_closed(tenant, f, least) for f, least in smallest.items())

    def written_off(self, job: JobState, smallest: Mapping[str, Smallest]) -> bool:
        """Whether ``job``, past its tenant's first :data:`EXPLAINED_PER_TENANT` jobs, is in a
        flavor closed to its tenant this cycle, or has a shape no node could place this cycle
        (with its tenant's head in the flavor past its chance to preempt): it is listed like
        the jobs of a tenant that can start nothing more. Per flavor, so that one startable
        job of another flavor in the queue neither makes the cycle examine every job nor
        changes their reasons (which the loop would then rewrite, row by row, every time such
        a job comes and goes)."""
        if not self.explain or self.tenant_positions.get(job.tenant, 0) < EXPLAINED_PER_TENANT:
            return False
        if self._flavor_closed(job.tenant, job.flavor, smallest[job.flavor]):
            return True
        head_tried = (job.tenant, job.flavor) in self.preemption_tried
        return head_tried and shape_of(job) in self.unplaceable

    def _flavor_closed(self, tenant: str, flavor: str, least: Smallest) -> bool:
        """The tenant's head in ``flavor`` had its chance to preempt, and the free GPUs (in
        total, or per node for even the smallest worker) or its quota cannot hold even its
        smallest job there. Once closed, a flavor stays closed for the rest of the cycle:
        within a cycle free capacity and quota only shrink (what a preemption frees is held
        for its preemptor)."""
        key = (tenant, flavor)
        if key in self.closed_flavors:
            return True
        if self.preemption_attempts > 0 and key not in self.preemption_tried:
            return False
        cluster = self.state.cluster
        closed = (
            cluster.free_gpus(flavor) < least.gpus
            or cluster.gpu_slots(flavor, least.gpus_per_worker) < least.workers
        )
        if not closed:
            fr = (flavor, GPU)
            tree = self.state.tree
            closed = fr in tree.limited and tree.available(tenant, fr) < least.gpus
        if closed:
            self.closed_flavors.add(key)
        return closed

    def defer(self, tenant: str, jobs: list[JobState], flavors: Collection[str]) -> None:
        """List ``jobs`` (the rest of ``tenant``'s queue, in its order, of ``flavors``) after
        the walk, with the shared reason of their flavor."""
        self.deferred.append((tenant, jobs, flavors))

    def _take_position(self, job: JobState, factors: Factors) -> int:
        """The next place in the queue goes to ``job``; returns its place in its tenant's."""
        self.position += 1
        tenant_position = self.tenant_positions.get(job.tenant, 0) + 1
        self.tenant_positions[job.tenant] = tenant_position
        if self.collect:
            self.queue.append(QueueEntry(job.id, self.position, tenant_position, factors))
        return tenant_position

    def pend_behind(self, job: JobState, factors: Factors) -> None:
        """A job :meth:`written_off`: its position and the shared reason of its flavor."""
        tenant_position = self._take_position(job, factors)
        if (job.tenant, job.flavor) in self.closed_flavors:
            message = self._behind_message(job.tenant, job.flavor)
        else:
            message = self._unplaceable_message(job.tenant, job.flavor)
        self.pending.append((job.id, self.position, tenant_position, BEHIND, message))

    def _unplaceable_message(self, tenant: str, flavor: str) -> str:
        return (
            f"waiting behind earlier {flavor} jobs of {tenant}; no {flavor} node has room for "
            "a worker of this size now"
        )

    def _behind_message(self, tenant: str, flavor: str) -> str:
        message = self.behind_messages.get((tenant, flavor))
        if message is None:
            message = self.behind_messages[(tenant, flavor)] = (
                f"waiting behind earlier {flavor} jobs of {tenant}, which cannot start now "
                f"(no free {flavor} GPUs or quota left for even its smallest job)"
            )
        return message

    def pend_deferred(self) -> None:
        """Positions and a shared reason for the jobs of tenants that can start nothing more.

        Built with C-level iterators (no Python frame per job): on a deep queue these are
        almost all of the cycle's entries."""
        for tenant, jobs, flavors in self.deferred:
            position = self.position
            tenant_position = self.tenant_positions.get(tenant, 0)
            count = len(jobs)
            messages: Iterable[str]
            if len(flavors) == 1:
                messages = repeat(self._behind_message(tenant, next(iter(flavors))), count)
            else:
                by_flavor = {flavor: self._behind_message(tenant, flavor) for flavor in flavors}
                messages = map(by_flavor.__getitem__, map(_FLAVOR, jobs))
            rows = zip(
                map(_ID, jobs),
                range(position + 1, position + count + 1),
                range(tenant_position + 1, tenant_position + count + 1),
                repeat(BEHIND),
                messages,
            )
            self.pending.extend(rows)
            if self.collect:
                for offset, job in enumerate(jobs, 1):
                    self.queue.append(
                        QueueEntry(job.id, position + offset, tenant_position + offset, {})
                    )
            self.position = position + count
            self.tenant_positions[tenant] = tenant_position + count

    def pend_gated(self, waiting: Iterable[tuple[JobState, str, str]]) -> None:
        """Positions and reasons of the jobs :func:`scheduler.gates.gate` set aside."""
        for job, reason, message in waiting:
            self._pend(job, self._take_position(job, {}), reason, message)

    def pend_unknown(self, jobs: Iterable[JobState]) -> None:
        for job in jobs:
            self.position += 1
            message = f"tenant {job.tenant!r} is not configured"
            self.pending.append((job.id, self.position, 0, UNKNOWN_TENANT, message))

    # -- one job ---------------------------------------------------------------------------

    def consider(self, job: JobState, factors: Factors) -> bool:
        """Admit ``job`` if possible; otherwise record why not. Returns whether it started."""
        tenant_position = self._take_position(job, factors)
        if job.not_before is not None and job.not_before > self.now:
            if self.explain:
                message = (
                    f"requeued after {job.attempts} eviction(s); "
                    f"eligible again at {explain.instant(job.not_before)}"
                )
                self._pend(job, tenant_position, BACKOFF, message)
            return False
        limited = self.limiter.blocks(job) if self.limiter is not None else None
        if limited is not None:
            if self.explain:
                reason, message = limited
                message = f"{message}; {explain.ordinal(tenant_position)} in tenant queue"
                self._pend(job, tenant_position, reason, message)
            return False
        waiting = self._try_start(job)
        if waiting is None:
            return True
        if self.explain:
            reason, message = waiting
            message = f"{message}; {explain.ordinal(tenant_position)} in tenant queue"
            self._pend(job, tenant_position, reason, message)
        return False

    def _pend(self, job: JobState, tenant_position: int, reason: str, message: str) -> None:
        self.pending.append((job.id, self.position, tenant_position, reason, message))

    def _try_start(self, job: JobState) -> tuple[str, str] | None:
        state = self.state
        if not state.cluster.has_nodes(job.flavor):
            return NO_NODES_FOR_FLAVOR, explain.no_nodes_message(job) if self.explain else ""
        shape = shape_of(job)
        request = state.quota_request(job, shape)
        reservation = self.reservations.get(job.flavor)
        if not self._fits_quota(job, request):
            reason = QUOTA_EXCEEDED
        else:
            placement = None
            if shape not in self.unplaceable:
                placement = state.cluster.place(job.flavor, job.workers, job.demand)
                if placement is None:
                    self.unplaceable.add(shape)
            reason = INSUFFICIENT_CAPACITY
            if (
                placement is not None
                and reservation is not None
                and not reservation.permits(job, placement, self.now)
            ):
                placement = self._place_around(job, reservation)
                reason = WAITING_FOR_RESERVATION
            if placement is not None:
                self._admit(job, request, placement, reservation)
                return None
        if reason != WAITING_FOR_RESERVATION and self.preemption_attempts > 0:
            plan = self._plan_preemption(job, request, shape)
            if plan is not None:
                return PREEMPTING, self._preempt(job, request, plan)
        if reason == INSUFFICIENT_CAPACITY or state.tree.within_nominal(job.tenant, request):
            waiting = self.waiting_for_capacity
            waiting[job.flavor] = waiting.get(job.flavor, 0) + job.total().gpu
        self.preemption_tried.add((job.tenant, job.flavor))
        backfilling = self.policy.backfill and job.flavor not in self.reservations
        starving = job.id in self.starving
        if backfilling and (reason == INSUFFICIENT_CAPACITY or starving):
            free = state.free_gpus_by_node(job.flavor)
            releases = state.node_releases(job.flavor)
            self.reservations[job.flavor] = reserve(job, free, releases, self.now)
        return reason, self._describe(job, request, reason) if self.explain else ""

    def _place_around(self, job: JobState, reservation: Reservation) -> tuple[str, ...] | None:
        """A placement that leaves the reserved job its nodes, or ``None``."""
        cluster = self.state.cluster
        closed = [name for name in reservation.blocked_nodes(job) if cluster.close(name)]
        try:
            placement = cluster.place(job.flavor, job.workers, job.demand)
        finally:
            for name in closed:
                cluster.reopen(name)
        if placement is None or not reservation.permits(job, placement, self.now):
            return None
        return placement

    def _fits_quota(self, job: JobState, request: Request) -> bool:
        """Quota check, remembering per tenant and flavor the smallest request found too big.

        Within a cycle usage only grows (preemptions clear the memo), so any request at least as
        large as a blocked one is blocked too; most of a long queue is decided this way.
        """
        key = (job.tenant, job.flavor)
        blocked = self.quota_blocked.get(key)
        if blocked is not None and _at_least(request, blocked[0]):
            return False
        if self.state.tree.fits(job.tenant, request):
            return True
        situation = explain.quota_situation(job, request, self.state.tree) if self.explain else None
        if blocked is None or _at_least(blocked[0], request):
            self.quota_blocked[key] = (request, situation, {})
        return False

    def _describe(self, job: JobState, request: Request, reason: str) -> str:
        if reason == QUOTA_EXCEEDED:
            memo = self.quota_blocked.get((job.tenant, job.flavor))
            if memo is None or memo[1] is None:
                situation = explain.quota_situation(job, request, self.state.tree)
                return explain.quota_message(job, request, self.state.tree, situation)
            shape = shape_of(job)
            message = memo[2].get(shape)
            if message is None:
                message = explain.quota_message(job, request, self.state.tree, memo[1])
                memo[2][shape] = message
            return message
        free = self.state.cluster.free_gpus(job.flavor)
        reservation = self.reservations.get(job.flavor)
        key = (job.flavor, job.workers, job.demand, free, reason, reservation is None)
        message = self.capacity_messages.get(key)
        if message is None:
            message = explain.capacity_message(job, free)
            if reservation is not None and reservation.job_id != job.id:
                at = explain.instant(reservation.start_at)
                message = f"{message}; would delay job {reservation.job_id} (reserved for {at})"
            self.capacity_messages[key] = message
        if reservation is not None and reservation.job_id == job.id:
            message = f"{message}; reserved to start by {explain.instant(reservation.start_at)}"
        return message

    def _admit(
        self,
        job: JobState,
        request: Request,
        placement: tuple[str, ...],
        reservation: Reservation | None,
    ) -> None:
        borrowing = not self.state.tree.within_nominal(job.tenant, request)
        self.state.start(replace(job, placement=placement, admitted_at=self.now))
        self.protected.add(job.id)  # never the victim of a later job of the same cycle
        if reservation is not None:
            reservation.commit(job, placement, self.now)
        if self.limiter is not None:
            self.limiter.charge(job)
        self.admitted.append(Admit(job.id, placement, borrowing))

    # -- preemption ------------------------------------------------------------------------

    def _plan_preemption(
        self, job: JobState, request: Request, shape: Shape
    ) -> PreemptionPlan | None:
        if self.preemption_attempts <= 0:
            return None
        head = (job.tenant, job.flavor)
        if head in self.preemption_tried:
            return None
        self.preemption_tried.add(head)
        state = self.state
        tree = state.tree
        if any(
            amount > tree.potential(job.tenant, fr)
            for fr, amount in request.items()
            if fr in tree.limited
        ):
            return None
        known_cost = state.known_preemption_cost(job, self.now)
        if known_cost == math.inf:
            return None
        wait = state.natural_wait(job, self.now, self.waiting_for_capacity.get(job.flavor, 0))
        if known_cost is not None and preemption_budget(job, self.policy, wait) < known_cost:
            return None
        self.preemption_attempts -= 1
        return plan_preemption(job, request, state, self.policy, self.now, self.protected, wait)

    def _preempt(self, job: JobState, request: Request, plan: PreemptionPlan) -> str:
        """Record the evictions and, for the rest of the cycle, account for their outcome.

        The victims are released and the preemptor is charged at its planned placement, so that
        later decisions in this cycle see quotas as they will be. The nodes involved are closed:
        the victims' pods still hold them until they are gone.
        """
        state = self.state
        state.touch()
        self.quota_blocked.clear()
        for victim, reason in plan.victims:
            self.protected.add(victim.id)
            message = f"evicted ({reason.value}) so that job {job.id} of {job.tenant} can start"
            self.preempted.append(Preempt(victim.id, reason, job.id, message))
            state.suspend_charges(victim)
        state.tree.add(job.tenant, request)
        state.cluster.allocate(plan.placement, job.demand)
        self.holds.append((job, request, plan))
        if self.limiter is not None:
            self.limiter.charge(job)
        nodes = [*plan.placement, *(n for v, _ in plan.victims for n in v.placement or ())]
        for name in dict.fromkeys(nodes):
            if state.cluster.close(name):
                self.closed_nodes.append(name)
        return (
            f"preempting {len(plan.victims)} job(s) to free {job.total().gpu} {job.flavor} GPUs; "
            "starts once they are gone"
        )
