"""The cycle's working state: quota accounting, free capacity and the running jobs, together.

:func:`scheduler.cycle.run_cycle` builds one from a snapshot and throws it away afterwards; the
simulator keeps one alive and updates it incrementally as jobs start and stop, so that a cycle
costs what it decides rather than the size of the cluster.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections.abc import Hashable, Iterable, Mapping
from operator import itemgetter

from quotas.tree import FlavorResource, NodeSpec, QuotaTree
from scheduler.backfill import reserve
from scheduler.fairshare import fair_shares
from scheduler.model import (
    CPU,
    GPU,
    MEMORY,
    CohortSpec,
    Demand,
    JobState,
    NodeState,
    TenantSpec,
)
from scheduler.placement import ClusterState

Request = dict[FlavorResource, int]


_requests: dict[tuple[str, int, Demand], Request] = {}


def job_request(job: JobState) -> Request:
    """What a job charges to quota: its whole gang, per (flavor, resource).

    Jobs share a handful of shapes, so requests are memoised by shape; callers must not mutate
    the returned mapping.
    """
    key = (job.flavor, job.workers, job.demand)
    request = _requests.get(key)
    if request is None:
        total = job.total()
        amounts = ((GPU, total.gpu), (CPU, total.cpu_milli), (MEMORY, total.memory_bytes))
        request = {(job.flavor, r): amount for r, amount in amounts if amount}
        if len(_requests) < 100_000:
            _requests[key] = request
    return request


def build_tree(tenants: Mapping[str, TenantSpec], cohorts: Mapping[str, CohortSpec]) -> QuotaTree:
    return QuotaTree(
        cohorts=[NodeSpec(c.name, c.parent, c.quotas) for c in cohorts.values()],
        tenants=[NodeSpec(t.name, t.cohort, t.quotas, t.weight) for t in tenants.values()],
    )


ReleaseEvent = tuple[float, str, int, str]
"""(end, node, GPUs the worker frees there, job id): one per worker of a running job."""
_EVENT_GPUS = itemgetter(2)


def _release_events(job: JobState) -> list[ReleaseEvent]:
    end = _deadline(job)
    if end is None or not job.placement:
        return []
    return [(end, name, job.demand.gpu, job.id) for name in job.placement]


def _deadline(job: JobState) -> float | None:
    if job.max_runtime_seconds is None or job.admitted_at is None:
        return None
    return job.admitted_at + job.max_runtime_seconds


class SchedulingState:
    """Quota tree + cluster capacity + running jobs, kept consistent with each other."""

    def __init__(
        self,
        tenants: Mapping[str, TenantSpec],
        cohorts: Mapping[str, CohortSpec],
        nodes: Iterable[NodeState],
        running: Iterable[JobState],
        block_label: str,
    ) -> None:
        self.tenants = tenants
        self.tree = build_tree(tenants, cohorts)
        running = list(running)
        self.cluster = ClusterState(nodes, running, block_label)
        self.running: dict[str, JobState] = {}
        self.running_by_flavor: dict[str, dict[str, JobState]] = {}
        self._by_tenant: dict[tuple[str, str], dict[str, JobState]] = {}
        self._quota_requests: dict[Hashable, Request] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._entitlement: dict[str, float] | None = None
        self.version = 0
        """Bumped whenever a job starts or stops or a cycle plans evictions: anything cached
        about what running jobs hold is stale once it moves."""
        self._releases: dict[str, tuple[int, list[ReleaseEvent], list[int]]] = {}
        self._waits: dict[Hashable, tuple[int, float]] = {}
        self._free_by_node: dict[str, tuple[int, dict[str, int]]] = {}
        self._release_events: dict[str, list[ReleaseEvent]] = {}
        self.failed_preemptions: dict[Hashable, tuple[int, float, float]] = {}
        """Preemption searches that failed, by (tenant, shape, priority): the version they saw,
        the instant until which their answer holds and the least work an eviction would have
        thrown away (``inf``: no permitted set of victims sufficed)."""
        self.evictable_at: dict[str, tuple[JobState, object, float]] = {}
        """Per running job, when it may first be evicted (see :mod:`scheduler.preemption`)."""
        for job in running:
            self._track(job, index_releases=False)
        for job in running:
            self._release_events.setdefault(job.flavor, []).extend(_release_events(job))
        for events in self._release_events.values():
            events.sort()

    def touch(self) -> None:
        self.version += 1

    def _track(self, job: JobState, index_releases: bool = True) -> None:
        self.version += 1
        self.running[job.id] = job
        deadline = _deadline(job)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, job.id))
        self.running_by_flavor.setdefault(job.flavor, {})[job.id] = job
        self._by_tenant.setdefault((job.tenant, job.flavor), {})[job.id] = job
        if index_releases:
            events = self._release_events.setdefault(job.flavor, [])
            for event in _release_events(job):
                bisect.insort(events, event)
        if self.tree.has_tenant(job.tenant):
            self.tree.add(job.tenant, job_request(job))

    def start(self, job: JobState) -> None:
        """Account a job that now holds its placement."""
        assert job.placement is not None
        self.cluster.allocate(job.placement, job.demand)
        self._track(job)

    def stop(self, job_id: str) -> JobState:
        """Release everything a running job holds and return it."""
        job = self.running.pop(job_id)
        self.version += 1
        del self.running_by_flavor[job.flavor][job_id]
        del self._by_tenant[(job.tenant, job.flavor)][job_id]
        events = self._release_events.get(job.flavor, [])
        for event in _release_events(job):
            del events[bisect.bisect_left(events, event)]
        self.evictable_at.pop(job_id, None)
        self.suspend_charges(job)
        return job

    def suspend_charges(self, job: JobState) -> None:
        """Release a running job's quota and capacity without forgetting it (what-if analysis)."""
        if job.placement:
            self.cluster.release(job.placement, job.demand)
        if self.tree.has_tenant(job.tenant):
            self.tree.remove(job.tenant, job_request(job))

    def restore_charges(self, job: JobState) -> None:
        if job.placement:
            self.cluster.allocate(job.placement, job.demand)
        if self.tree.has_tenant(job.tenant):
            self.tree.add(job.tenant, job_request(job))

    def quota_request(self, job: JobState, key: Hashable) -> Request:
        """The part of :func:`job_request` that any quota limits, memoised by ``key``, which
        must identify the job's flavor, gang size and per-worker demand."""
        request = self._quota_requests.get(key)
        if request is None:
            limited = self.tree.limited
            request = {fr: n for fr, n in job_request(job).items() if fr in limited}
            self._quota_requests[key] = request
        return request

    def overdue(self, now: float) -> list[JobState]:
        """Running jobs whose time limit has passed, from a heap of deadlines (no full scan)."""
        due: list[tuple[float, str]] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            entry = heapq.heappop(self._deadlines)
            job = self.running.get(entry[1])
            if job is not None and _deadline(job) == entry[0]:
                due.append(entry)
        for entry in due:
            heapq.heappush(self._deadlines, entry)
        return [self.running[job_id] for _, job_id in due]

    def entitlement(self) -> Mapping[str, float]:
        """Each tenant's fair share (:func:`scheduler.fairshare.fair_shares`)."""
        if self._entitlement is None:
            self._entitlement = fair_shares(self.tenants)
        return self._entitlement

    def _release_table(self, flavor: str) -> tuple[int, list[ReleaseEvent], list[int]]:
        """The flavor's release events (:meth:`node_releases`, soonest first) and the GPUs
        freed by each cumulatively; built once per :attr:`version`. Per worker rather than per
        job: the first end at which enough GPUs are back is the same either way."""
        cached = self._releases.get(flavor)
        if cached is not None and cached[0] == self.version:
            return cached
        events = self.node_releases(flavor)
        freed = list(itertools.accumulate(map(_EVENT_GPUS, events)))
        table = self._releases[flavor] = (self.version, events, freed)
        return table

    def free_gpus_by_node(self, flavor: str) -> dict[str, int]:
        """Free GPUs of each open node of the flavor (cached per :attr:`version`)."""
        cached = self._free_by_node.get(flavor)
        if cached is None or cached[0] != self.version:
            cached = self._free_by_node[flavor] = (
                self.version,
                self.cluster.free_gpus_by_node(flavor),
            )
        return cached[1]

    def node_releases(self, flavor: str) -> list[ReleaseEvent]:
        """(end, node, GPUs, job) of each worker of the flavor's running jobs with a time limit,
        soonest first; kept sorted as jobs start and stop, so a projection never sorts."""
        return self._release_events.get(flavor, [])

    def natural_wait(self, job: JobState, now: float, ahead: int = 0) -> float:
        """How long until the job could start with no eviction, projected from the running jobs'
        time limits (``inf`` when jobs without a limit would have to end): until its workers can
        be placed, node by node, and until enough GPUs come back for its quota.

        ``ahead``: GPUs that jobs before it in the queue wait for; it waits at least until enough
        GPUs free up for them and for it.
        """
        key = (job.flavor, job.workers, job.demand.gpu)
        cached = self._waits.get(key)
        if cached is None or cached[0] != self.version:
            flavor = job.flavor
            free = self.free_gpus_by_node(flavor)
            start_at = reserve(job, free, self.node_releases(flavor), now).start_at
            cached = self._waits[key] = (self.version, start_at)
        wait = max(0.0, cached[1] - now)
        gpus = job.total().gpu
        short = ahead + gpus - self.cluster.free_gpus(job.flavor)
        fr = (job.flavor, GPU)
        if self.tree.has_tenant(job.tenant) and fr in self.tree.limited:
            short = max(short, ahead + gpus - self.tree.available(job.tenant, fr))
        if short > 0:
            _, ends, freed = self._release_table(job.flavor)
            index = bisect.bisect_left(freed, short)
            by_count = max(0.0, ends[index][0] - now) if index < len(ends) else math.inf
            wait = max(wait, by_count)
        return wait

    def _preemption_key(self, job: JobState) -> Hashable:
        return (job.tenant, job.flavor, job.workers, job.demand, job.priority)

    def remember_failed_preemption(self, job: JobState, until: float, cost: float) -> None:
        self.failed_preemptions[self._preemption_key(job)] = (self.version, until, cost)

    def known_preemption_cost(self, job: JobState, now: float) -> float | None:
        """The least work (GPU-seconds) an eviction for a job of this tenant, shape and
        priority was found to throw away, if such a search failed since anything it depended on
        changed (``inf``: no permitted set of victims sufficed; ``None``: nothing known). A
        search with a budget below it would fail again."""
        entry = self.failed_preemptions.get(self._preemption_key(job))
        if entry is None or entry[0] != self.version or now >= entry[1]:
            return None
        return entry[2]

    def running_of(self, tenant: str, flavor: str) -> Iterable[JobState]:
        return self._by_tenant.get((tenant, flavor), {}).values()

    def running_on(self, flavor: str) -> Iterable[JobState]:
        return self.running_by_flavor.get(flavor, {}).values()
