"""The scheduling cycle's inputs and outputs: an immutable snapshot in, decisions out.

The cycle (:mod:`scheduler.cycle`) never touches the database or the cluster. The scheduler loop
builds a :class:`Snapshot` from the store and the cluster inventory, runs the cycle, and applies
the returned :class:`CycleResult`; the simulator builds snapshots from a trace instead. Keeping
these types free of I/O is what lets one implementation serve production, simulation and tests.

Units are integers throughout: GPUs as a count, CPU in millicores, memory in bytes, time in
seconds since the epoch (floats) for instants and seconds (ints) for durations.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

GPU = "gpu"
CPU = "cpu"
MEMORY = "memory"
RESOURCES: tuple[str, ...] = (GPU, CPU, MEMORY)


class Priority(enum.IntEnum):
    """Job priority classes; a higher value is served first and may preempt lower ones."""

    LOW = 0
    NORMAL = 1
    HIGH = 2


@dataclass(frozen=True, slots=True)
class Demand:
    """Resources requested by one worker (pod) of a job."""

    gpu: int
    cpu_milli: int
    memory_bytes: int

    def as_mapping(self) -> dict[str, int]:
        return {GPU: self.gpu, CPU: self.cpu_milli, MEMORY: self.memory_bytes}


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """Quota of one (flavor, resource) for a tenant or a cohort; ``None`` limits are unlimited."""

    nominal: int
    borrowing_limit: int | None = None
    lending_limit: int | None = None


FlavorResource = tuple[str, str]
"""A (flavor name, resource name) pair such as ``("h100", "gpu")``."""


@dataclass(frozen=True, slots=True)
class TenantSpec:
    name: str
    cohort: str | None
    weight: float = 1.0
    quotas: Mapping[FlavorResource, QuotaLimits] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CohortSpec:
    name: str
    parent: str | None
    quotas: Mapping[FlavorResource, QuotaLimits] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node as the cycle sees it: what it can hold and what others already use on it.

    ``foreign`` is what pods Yushan did not create hold on the node; Yushan's own running jobs
    are accounted from :attr:`Snapshot.running`, not here.
    """

    name: str
    flavor: str | None
    allocatable: Demand
    labels: Mapping[str, str] = field(default_factory=dict)
    schedulable: bool = True
    foreign: Demand = Demand(0, 0, 0)


@dataclass(frozen=True, slots=True)
class JobState:
    """A job waiting in the queue or holding resources.

    ``placement`` (one node name per worker) and ``admitted_at`` are set for admitted and running
    jobs. ``not_before`` holds a requeued job back until its backoff has passed.
    """

    id: str
    tenant: str
    user: str
    flavor: str
    workers: int
    demand: Demand
    priority: Priority
    submitted_at: float
    max_runtime_seconds: int | None = None
    admitted_at: float | None = None
    placement: tuple[str, ...] | None = None
    attempts: int = 0
    not_before: float | None = None
    checkpoint_interval_seconds: int | None = None
    """The job saves its progress this often; evicted, it loses only the work since the last
    checkpoint (``None``: it does not checkpoint and restarts from zero)."""
    evicted_at: tuple[float, ...] = ()
    """When the job was evicted in the last 24 hours (for the per-day eviction cap)."""

    def total(self) -> Demand:
        return Demand(
            self.demand.gpu * self.workers,
            self.demand.cpu_milli * self.workers,
            self.demand.memory_bytes * self.workers,
        )


def unsaved_seconds(job: JobState, now: float) -> float:
    """Run time an eviction at ``now`` would throw away: since the last checkpoint, or since the
    start for a job that does not checkpoint."""
    if job.admitted_at is None:
        return 0.0
    ran = max(0.0, now - job.admitted_at)
    interval = job.checkpoint_interval_seconds
    if interval is None or interval <= 0:
        return ran
    return ran % interval


def lost_gpu_seconds(job: JobState, now: float) -> float:
    """GPU-seconds of work an eviction at ``now`` would throw away."""
    return unsaved_seconds(job, now) * job.demand.gpu * job.workers


@dataclass(frozen=True, slots=True)
class UsageState:
    """Decayed past GPU usage per tenant and per (tenant, user).

    Maintained with :func:`quotas.decay.decay` from the number of GPUs in use; the cycle only
    compares these values with each other, so any consistent unit works.
    """

    tenants: Mapping[str, float] = field(default_factory=dict)
    users: Mapping[tuple[str, str], float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    nodes: tuple[NodeState, ...]
    tenants: Mapping[str, TenantSpec]
    cohorts: Mapping[str, CohortSpec]
    queued: tuple[JobState, ...]
    running: tuple[JobState, ...]
    usage: UsageState = UsageState()
    preempting: frozenset[str] = frozenset()
    """Queued jobs that preempted victims in an earlier cycle (their ``Pending`` had reason
    ``"Preempting"``); the cycle serves them before anything else so that nobody else takes the
    capacity their victims freed."""


class PreemptionReason(enum.StrEnum):
    IN_TENANT_PRIORITY = "InTenantPriority"
    RECLAIM_NOMINAL = "ReclaimNominalQuota"
    FAIR_SHARE = "FairSharePreemption"


@dataclass(frozen=True, slots=True)
class Admit:
    job_id: str
    placement: tuple[str, ...]
    borrowing: bool = False


@dataclass(frozen=True, slots=True)
class Preempt:
    job_id: str
    reason: PreemptionReason
    preemptor_id: str
    message: str


@dataclass(frozen=True, slots=True)
class Fail:
    job_id: str
    reason: str
    message: str


class Pending(NamedTuple):
    """Why a queued job did not start this cycle and where it stands (a tuple: a cycle makes
    one for every queued job, so it must be cheap to build)."""

    job_id: str
    position: int
    tenant_position: int
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class CycleResult:
    admitted: tuple[Admit, ...] = ()
    preempted: tuple[Preempt, ...] = ()
    failed: tuple[Fail, ...] = ()
    pending: tuple[Pending, ...] = ()
