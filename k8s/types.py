"""The adapter's own vocabulary: what the scheduler loop hands in and what it gets back.

``k8s`` sits below ``scheduler`` in the layer contract, so it cannot use the scheduler's model
types. The loop converts an admission into a :class:`WorkloadSpec`, and reads the cluster through
:class:`NodeInfo` and :class:`GangObservation`. All of these are immutable values; none of them
holds a Kubernetes client object, so they can be compared, logged and built in tests freely.

Units follow the scheduler's model: GPUs as a count, CPU in millicores, memory in bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_JOB_ID_LENGTH = 52
"""Leaves room for ``-<index>`` in pod names and hostnames (63-character DNS labels)."""


class InvalidWorkloadError(ValueError):
    """A :class:`WorkloadSpec` that cannot become valid Kubernetes objects."""


def is_dns_label(value: str, max_length: int = 63) -> bool:
    return len(value) <= max_length and _DNS_LABEL.match(value) is not None


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of the three resources Yushan schedules."""

    gpu: int = 0
    cpu_milli: int = 0
    memory_bytes: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.gpu + other.gpu,
            self.cpu_milli + other.cpu_milli,
            self.memory_bytes + other.memory_bytes,
        )


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """One job to run as a gang of pods, one pod per worker, on nodes the scheduler chose.

    ``attempt`` increases each time the job is requeued; it is stamped on every pod so that the
    pods of an earlier attempt are recognised (and removed) rather than adopted.
    """

    job_id: str
    job_name: str
    tenant: str
    user: str
    namespace: str
    image: str
    workers: int
    gpus_per_worker: int
    cpu_milli: int
    memory_bytes: int
    placement: tuple[str, ...]
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    node_labels: Mapping[str, str] = field(default_factory=dict)
    max_runtime_seconds: int | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 0
    checkpoint_interval_seconds: int | None = None
    """How often the job checkpoints; the pods get it as ``YUSHAN_CHECKPOINT_INTERVAL_SECONDS``."""

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise InvalidWorkloadError(f"job {self.job_id!r}: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems = []
        if not is_dns_label(self.job_id, MAX_JOB_ID_LENGTH):
            problems.append(f"job id must be a DNS label of at most {MAX_JOB_ID_LENGTH} chars")
        if not is_dns_label(self.namespace):
            problems.append(f"namespace {self.namespace!r} is not a DNS label")
        if self.workers < 1:
            problems.append("workers must be at least 1")
        if len(self.placement) != self.workers:
            problems.append(f"placement names {len(self.placement)} nodes for {self.workers}")
        if min(self.gpus_per_worker, self.cpu_milli, self.memory_bytes, self.attempt) < 0:
            problems.append("resources and attempt must not be negative")
        if self.max_runtime_seconds is not None and self.max_runtime_seconds < 1:
            problems.append("max_runtime_seconds must be positive")
        if self.checkpoint_interval_seconds is not None and self.checkpoint_interval_seconds < 1:
            problems.append("checkpoint_interval_seconds must be positive")
        if not self.image:
            problems.append("image is required")
        return problems

    @property
    def per_worker(self) -> Resources:
        return Resources(self.gpus_per_worker, self.cpu_milli, self.memory_bytes)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as the adapter reports it to the scheduler.

    ``foreign`` sums the requests of non-terminal pods bound to this node that Yushan did not
    create; the scheduler subtracts it from ``allocatable``.
    """

    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    capacity: Resources
    allocatable: Resources
    ready: bool
    unschedulable: bool
    foreign: Resources = Resources()
    flavor: str | None = None


PodPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]
GangPhase = Literal[
    "pending", "running", "succeeded", "failed", "terminating", "missing", "partial"
]


@dataclass(frozen=True, slots=True)
class WorkerObservation:
    """One worker pod of a gang as last seen."""

    worker: int
    name: str
    namespace: str
    attempt: int
    node: str | None
    phase: PodPhase
    terminating: bool = False
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: float | None = None
    """When its container started running (epoch seconds, as the pod status says: whole
    seconds on Kubernetes), or ``None`` before it ran."""
    finished_at: float | None = None
    """When its container terminated (epoch seconds), or ``None`` while it runs."""


@dataclass(frozen=True, slots=True)
class GangObservation:
    """The pods of one job folded into a single phase the scheduler loop can act on.

    Phases: ``pending`` (some worker not running yet), ``running`` (every worker running or
    already finished), ``succeeded`` (all succeeded), ``failed`` (a worker failed, its node is
    gone or NotReady, or a started gang lost pods; ``retryable`` tells such a loss or an eviction
    — reasons ``NodeLost``, ``PodsLost``, ``Evicted`` — apart from the job's own failure, so the
    loop can requeue the former and fail the latter), ``terminating`` (pods are being deleted:
    their GPUs are not free yet), ``partial`` (fewer pods than workers and none started, e.g.
    after a crash mid-dispatch; reconcile completes it) and ``missing`` (no pod at all for a job
    that should have some; the scheduler loop makes these for its admitted and running jobs).
    Only pods of the newest attempt present count towards the phase.
    """

    job_id: str
    namespace: str
    attempt: int
    workers: int
    phase: GangPhase
    pods: tuple[WorkerObservation, ...] = ()
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    retryable: bool = False

    @property
    def started_at(self) -> float | None:
        """When the gang's first worker started running (its GPUs were in use from then)."""
        return min((w.started_at for w in self.pods if w.started_at is not None), default=None)

    @property
    def finished_at(self) -> float | None:
        """When its last worker terminated, once every worker has (``None`` before)."""
        ends = [w.finished_at for w in self.pods]
        if not ends or any(end is None for end in ends):
            return None
        return max(end for end in ends if end is not None)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What :meth:`k8s.client.ClusterClient.reconcile` found and did, by pod/service name."""

    adopted: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)
