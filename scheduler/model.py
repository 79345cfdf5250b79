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

from quotas.money import Rate, Usage, charge

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


class Condition(enum.StrEnum):
    """What a dependency waits for (Slurm's afterok, afternotok, afterany)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Ended without succeeding: failed or cancelled."""
    FINISHED = "finished"


class Dependency(NamedTuple):
    job_id: str
    condition: Condition


class StopPolicy(enum.StrEnum):
    """Kueue's ``stopPolicy`` for a tenant or a flavor."""

    OPEN = "open"
    HOLD = "hold"
    """Nothing new is admitted; running jobs continue."""
    HOLD_AND_DRAIN = "hold_and_drain"
    """Nothing new is admitted and running jobs are stopped and requeued."""


@dataclass(frozen=True, slots=True)
class UserLimits:
    """Per-user limits inside a tenant (``None``: no limit; an override's ``None`` inherits the
    tenant default)."""

    max_gpus: int | None = None
    """GPUs in use (admitted or running jobs) at once."""
    max_running_jobs: int | None = None
    max_queued_jobs: int | None = None
    """Checked at submission, not by the cycle."""

    def over(self, default: UserLimits) -> UserLimits:
        """These limits, each unset one taken from ``default``."""
        return UserLimits(
            default.max_gpus if self.max_gpus is None else self.max_gpus,
            default.max_running_jobs if self.max_running_jobs is None else self.max_running_jobs,
            default.max_queued_jobs if self.max_queued_jobs is None else self.max_queued_jobs,
        )

    def unlimited(self) -> bool:
        return self.max_gpus is None and self.max_running_jobs is None


NO_LIMITS = UserLimits()


@dataclass(frozen=True, slots=True)
class Credit:
    """A metered tenant's credit as the cycle sees it (:mod:`scheduler.gates`): listed only for
    tenants whose credit is gone or that admit a job only when its maximum cost is covered."""

    available: int
    """Micro-credits: wallet balance plus credit limit."""
    require_cover: bool = False
    rates: Mapping[str, Rate] = field(default_factory=dict)
    """Hourly price per flavor for this tenant's kind (only with ``require_cover``)."""

    def max_cost(self, job: JobState) -> int | None:
        """``max_runtime_seconds`` of the job at its flavor's price (``None``: no limit)."""
        if job.max_runtime_seconds is None:
            return None
        total = job.total()
        usage = Usage(total.gpu, total.cpu_milli, total.memory_bytes)
        return charge(self.rates.get(job.flavor, Rate()), usage, job.max_runtime_seconds * 1000)[0]


@dataclass(frozen=True, slots=True)
class QueueControls:
    """What holds jobs back besides quota and capacity (:mod:`scheduler.gates`): stopped tenants
    and flavors (only those not ``open`` are listed), per-user limits, and the status of every
    job a queued job depends on (``queued``, ``running``, ``succeeded``, ``failed``,
    ``cancelled`` …; a job missing from it no longer exists)."""

    tenant_stops: Mapping[str, StopPolicy] = field(default_factory=dict)
    flavor_stops: Mapping[str, StopPolicy] = field(default_factory=dict)
    user_limits: Mapping[str, UserLimits] = field(default_factory=dict)
    """Tenant defaults, by tenant."""
    user_overrides: Mapping[tuple[str, str], UserLimits] = field(default_factory=dict)
    """Per-user overrides, by (tenant, user)."""
    outcomes: Mapping[str, str] = field(default_factory=dict)
    credits: Mapping[str, Credit] = field(default_factory=dict)
    """By tenant: metered tenants out of credit or requiring cover (see :class:`Credit`)."""

    def limits_for(self, tenant: str, user: str) -> UserLimits:
        default = self.user_limits.get(tenant, NO_LIMITS)
        override = self.user_overrides.get((tenant, user))
        return default if override is None else override.over(default)


NO_CONTROLS = QueueControls()


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
    held: bool = False
    """Held by its owner or a tenant admin: never admitted until released."""
    depends_on: tuple[Dependency, ...] = ()
    array_id: str | None = None
    """The parent id shared by the tasks of a job array."""
    array_parallelism: int | None = None
    """At most this many tasks of the array hold resources at once."""

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
    controls: QueueControls = NO_CONTROLS


class PreemptionReason(enum.StrEnum):
    IN_TENANT_PRIORITY = "InTenantPriority"
    RECLAIM_NOMINAL = "ReclaimNominalQuota"
    FAIR_SHARE = "FairSharePreemption"
    DRAINED = "Drained"
    """The job's tenant or flavor was set to ``hold_and_drain``: stopped and requeued."""


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


Pending = tuple[str, int, int, str, str]
"""Why a queued job did not start this cycle and where it stands: (job id, position in the
queue, position in its tenant's queue, reason, message). A plain tuple, read by unpacking: a
cycle makes one for every queued job, and on a deep queue building them is a large part of the
cycle (a named tuple costs three times as much to build, a Python call per job)."""


@dataclass(frozen=True, slots=True)
class CycleResult:
    admitted: tuple[Admit, ...] = ()
    preempted: tuple[Preempt, ...] = ()
    failed: tuple[Fail, ...] = ()
    pending: tuple[Pending, ...] = ()
