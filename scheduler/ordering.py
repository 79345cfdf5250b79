"""The order in which the cycle considers queued jobs.

``fifo``: one queue by submission time.

``fair``: a two-level tournament. Across tenants the next tenant served is the one with the
smallest key

    (borrowing, DRS(tenant with its head job) / 1000 + usage_weight * usage_ratio, head submit)

where ``borrowing`` says whether the head job would take the tenant above its nominal quota (so
tenants within their quota always come first, as in Kueue), DRS is Kueue's dominant share of what
is borrowed, and ``usage_ratio`` is the tenant's share of all decayed usage divided by its share of
the entitlement (weight x nominal GPUs): 1.0 means it used exactly its share lately. Inside a tenant
the next job is the highest priority, then the user with the least decayed usage, then the oldest
submission. Every admission charges an entry penalty to the tenant and the user, so a burst of
submissions interleaves with other tenants instead of jumping the queue.

Only the tenant just served changes its key, so each step is a heap pop and push: O(log tenants).
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import compress, islice
from operator import attrgetter, eq
from typing import NamedTuple

from quotas.decay import entry_penalty
from quotas.tree import QuotaTree
from scheduler.model import JobState, UsageState
from scheduler.policy import Policy
from scheduler.state import job_request

Factors = dict[str, float]


class FifoOrdering:
    def __init__(self, jobs: Iterable[JobState], now: float) -> None:
        self._jobs = deque(sorted(jobs, key=lambda j: (j.submitted_at, j.id)))
        self._now = now

    def next(self) -> tuple[JobState, Factors] | None:
        if not self._jobs:
            return None
        job = self._jobs.popleft()
        return job, {"submitted_at": job.submitted_at, "age_seconds": self._now - job.submitted_at}

    def charged(self, job: JobState, admitted: bool) -> None:
        """FIFO order does not depend on what was admitted."""


_SUBMITTED_AT = attrgetter("submitted_at")
_PRIORITY = attrgetter("priority")
_ID = attrgetter("id")
_BOUND_SHAPE = attrgetter("flavor", "demand.gpu", "workers")


def _negated_priority(job: JobState) -> int:
    return -job.priority


def _priority_runs(lane: list[JobState]) -> list[tuple[int, list[JobState]]]:
    """A lane (highest priority first) cut into its runs of one priority each."""
    runs = []
    start = 0
    while start < len(lane):
        level = lane[start].priority
        end = bisect.bisect_right(lane, -level, lo=start, key=_negated_priority)
        runs.append((int(level), lane[start:end]))
        start = end
    return runs


def _in_tenant_order(jobs: Iterable[JobState]) -> list[JobState]:
    """Highest priority first, then oldest, then by id (stable sorts on C-level keys; the store
    hands queued jobs over in submission order, which these sorts pass through in linear time).

    The id only breaks ties of submission time (job arrays, one group commit), so only the runs
    of equal times are sorted by it: a key of (time, id) would build a tuple per job."""
    ordered = sorted(jobs, key=_SUBMITTED_AT)
    times = list(map(_SUBMITTED_AT, ordered))
    run_start = run_end = -1
    for index in compress(range(1, len(times)), map(eq, times, islice(times, 1, None))):
        if index != run_end:  # job ``index`` ties with the one before it: a new run starts
            _by_id(ordered, run_start, run_end)
            run_start = index - 1
        run_end = index + 1
    _by_id(ordered, run_start, run_end)
    ordered.sort(key=_PRIORITY, reverse=True)
    return ordered


def _by_id(jobs: list[JobState], start: int, end: int) -> None:
    if start >= 0:
        jobs[start:end] = sorted(jobs[start:end], key=_ID)


class Smallest(NamedTuple):
    """Lower bounds over a tenant's queued jobs of one flavor, each taken on its own."""

    gpus: int
    """Total GPUs (per worker x workers)."""
    gpus_per_worker: int
    workers: int


def _lower_bound(smallest: dict[str, Smallest], job: JobState) -> None:
    """Fold ``job`` into ``smallest``, the lower bounds per flavor of one tenant's jobs."""
    per_worker, workers = job.demand.gpu, job.workers
    known = smallest.get(job.flavor)
    if known is None:
        smallest[job.flavor] = Smallest(per_worker * workers, per_worker, workers)
    elif per_worker < known.gpus_per_worker or workers < known.workers:
        smallest[job.flavor] = Smallest(
            min(known.gpus, per_worker * workers),
            min(known.gpus_per_worker, per_worker),
            min(known.workers, workers),
        )


def smallest_jobs(jobs: Iterable[JobState]) -> dict[tuple[str, str], Smallest]:
    """Per (tenant, flavor), lower bounds on what any of ``jobs`` asks for."""
    by_tenant: dict[str, dict[str, Smallest]] = {}
    for job in jobs:
        smallest = by_tenant.get(job.tenant)
        if smallest is None:
            smallest = by_tenant[job.tenant] = {}
        _lower_bound(smallest, job)
    return _by_pair(by_tenant)


def _by_pair(by_tenant: Mapping[str, Mapping[str, Smallest]]) -> dict[tuple[str, str], Smallest]:
    """Per-tenant, per-flavor bounds keyed by (tenant, flavor)."""
    return {(t, f): least for t, flavors in by_tenant.items() for f, least in flavors.items()}


@dataclass(slots=True)
class _TenantQueue:
    users: dict[str, deque[JobState]]
    heap: list[tuple[int, float, float, str]]
    penalty: float = 0.0


class FairOrdering:
    def __init__(
        self,
        jobs: Iterable[JobState],
        tree: QuotaTree,
        entitlement: Mapping[str, float],
        usage: UsageState,
        policy: Policy,
        now: float,
        record_factors: bool = True,
    ) -> None:
        self._record = record_factors
        self._tree = tree
        self._usage = usage
        self._policy = policy
        self._now = now
        self._user_penalty: dict[tuple[str, str], float] = {}
        self._factor_cache: dict[str, dict[tuple[str, int, int, int, int], Factors]] = {}
        by_tenant: dict[str, dict[str, deque[JobState]]] = {}
        self._smallest: dict[str, dict[str, Smallest]] = {}
        shapes: dict[str, set[tuple[str, int, int]]] = {}
        for job in _in_tenant_order(jobs):
            users = by_tenant.get(job.tenant)
            if users is None:
                users = by_tenant[job.tenant] = {}
                self._smallest[job.tenant] = {}
                shapes[job.tenant] = set()
            lane = users.get(job.user)
            if lane is None:
                lane = users[job.user] = deque()
            lane.append(job)
            shape = _BOUND_SHAPE(job)
            seen = shapes[job.tenant]
            if shape not in seen:  # the bounds only change with a shape not seen yet
                seen.add(shape)
                _lower_bound(self._smallest[job.tenant], job)
        self.bounds = _by_pair(self._smallest)
        self._queues: dict[str, _TenantQueue] = {}
        for tenant, users in by_tenant.items():
            queue = _TenantQueue(users, [])
            for user in queue.users:
                self._push_user(tenant, queue, user)
            self._queues[tenant] = queue
        self._entitlement = entitlement
        self._usage_total = sum(usage.tenants.values())
        self._heap: list[tuple[bool, float, float, str, Factors]] = []
        for tenant in self._queues:
            self._push_tenant(tenant)

    def _user_usage(self, tenant: str, user: str) -> float:
        key = (tenant, user)
        return self._usage.users.get(key, 0.0) + self._user_penalty.get(key, 0.0)

    def _push_user(self, tenant: str, queue: _TenantQueue, user: str) -> None:
        jobs = queue.users[user]
        if jobs:
            head = jobs[0]
            key = (-int(head.priority), self._user_usage(tenant, user), head.submitted_at, user)
            heapq.heappush(queue.heap, key)

    def _head(self, tenant: str) -> JobState:
        queue = self._queues[tenant]
        return queue.users[queue.heap[0][3]][0]

    def usage_ratio(self, tenant: str) -> float:
        queue = self._queues[tenant]
        used = self._usage.tenants.get(tenant, 0.0) + queue.penalty
        return used / max(self._usage_total, 1.0) / self._entitlement.get(tenant, 1e-9)

    def _tenant_factors(self, tenant: str, head: JobState) -> Factors:
        request = job_request(head)
        share = self._tree.share(tenant, request)
        ratio = self.usage_ratio(tenant)
        borrowing = 0.0 if self._tree.within_nominal(tenant, request) else 1.0
        return {
            "tenant_borrowing": borrowing,
            "tenant_drs": share,
            "tenant_usage": self._usage.tenants.get(tenant, 0.0),
            "tenant_usage_ratio": ratio,
            "entry_penalty": self._queues[tenant].penalty,
            "tenant_score": share / 1000.0 + self._policy.usage_weight * ratio,
        }

    def _cached_factors(self, tenant: str, head: JobState) -> Factors:
        """Tenant factors only change with the tenant's own admissions and its head's shape."""
        demand = head.demand
        shape = (head.flavor, head.workers, demand.gpu, demand.cpu_milli, demand.memory_bytes)
        cache = self._factor_cache.setdefault(tenant, {})
        factors = cache.get(shape)
        if factors is None:
            factors = cache[shape] = self._tenant_factors(tenant, head)
        return factors

    def _tenant_key(self, tenant: str, head: JobState) -> tuple[bool, float, float, str, Factors]:
        factors = self._cached_factors(tenant, head)
        borrowing = factors["tenant_borrowing"] > 0
        return (borrowing, factors["tenant_score"], head.submitted_at, tenant, factors)

    def _push_tenant(self, tenant: str) -> None:
        if self._queues[tenant].heap:
            head = self._head(tenant)
            heapq.heappush(self._heap, self._tenant_key(tenant, head))

    def next(self) -> tuple[JobState, Factors] | None:
        if not self._heap:
            return None
        # The served tenant and user stay at the top of their heaps until ``charged`` replaces
        # them with their new keys: one sift instead of a pop and a push.
        _, _, _, tenant, factors = self._heap[0]
        queue = self._queues[tenant]
        user = queue.heap[0][3]
        job = queue.users[user].popleft()
        if self._record:
            factors = dict(factors)
            factors.update(
                priority=float(job.priority),
                user_usage=self._user_usage(tenant, user),
                age_seconds=self._now - job.submitted_at,
                submitted_at=job.submitted_at,
            )
        return job, factors

    def smallest(self, tenant: str) -> dict[str, Smallest]:
        """Per flavor, the fewest GPUs, GPUs per worker and workers any queued job of the
        tenant asks for (at the start of the cycle: a bound for what is left)."""
        return self._smallest[tenant]

    def retire(self, job: JobState) -> list[JobState]:
        """Take the tenant just served (``job`` did not start) out of the tournament; returns its
        remaining jobs in the order it would have served them.

        That order is the merge of the users' lanes by (priority, user's usage, submission,
        user) with the usages fixed from now on: per priority level, the users' runs of that
        level by usage, and the runs of users with equal usage merged by submission (a stable
        sort of the runs concatenated in user order). Only slices and C-level sorts touch the
        jobs themselves."""
        queue = self._queues[job.tenant]
        heapq.heappop(self._heap)
        lanes = sorted((usage, user) for _, usage, _, user in queue.heap)
        queue.heap.clear()
        levels: dict[int, list[tuple[float, list[JobState]]]] = {}
        for usage, user in lanes:
            for level, run in _priority_runs(list(queue.users[user])):
                levels.setdefault(level, []).append((usage, run))
            queue.users[user].clear()
        rest: list[JobState] = []
        for level in sorted(levels, reverse=True):
            runs = levels[level]
            start = 0
            while start < len(runs):
                usage = runs[start][0]
                end = start + 1
                while end < len(runs) and runs[end][0] == usage:
                    end += 1
                if end == start + 1:
                    rest.extend(runs[start][1])
                else:
                    tied = [j for _, run in runs[start:end] for j in run]
                    rest.extend(sorted(tied, key=_SUBMITTED_AT))
                start = end
        return rest

    def charged(self, job: JobState, admitted: bool) -> None:
        """Re-enter the tenant just served, charging the entry penalty if its job started."""
        tenant, user = job.tenant, job.user
        queue = self._queues[tenant]
        if admitted:
            self._factor_cache.pop(tenant, None)
            penalty = entry_penalty(
                job.total().gpu, self._policy.usage_sampling_seconds, self._policy.half_life_seconds
            )
            queue.penalty += penalty
            self._user_penalty[(tenant, user)] = (
                self._user_penalty.get((tenant, user), 0.0) + penalty
            )
        jobs = queue.users[user]
        if jobs:
            head = jobs[0]
            usage = queue.heap[0][1] if not admitted else self._user_usage(tenant, user)
            heapq.heapreplace(queue.heap, (-head.priority, usage, head.submitted_at, user))
        else:
            heapq.heappop(queue.heap)
        if queue.heap:
            heapq.heapreplace(self._heap, self._tenant_key(tenant, self._head(tenant)))
        else:
            heapq.heappop(self._heap)
