"""Pure folding of raw API objects (JSON dicts) into :class:`NodeInfo` and gang observations.

Both the one-shot calls of :class:`k8s.client.ClusterClient` and the cached view of
:class:`k8s.watcher.ClusterWatcher` go through these functions, so a listed cluster and a
watched one are interpreted identically, and the rules can be tested without a server.

A gang's phase is decided from the pods of its newest attempt only, in this order: a failed
worker fails the gang; a worker on a node that is gone or NotReady fails it too, as a retryable
node loss; then deletion in progress; then missing workers — a retryable ``PodsLost`` failure if
the rest of the gang had already started (the pod garbage collector removed pods of a deleted
node), ``partial`` if nothing started yet (a dispatch still under way or cut short, which
reconcile completes); then all succeeded, all running, pending.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from k8s.manifests import (
    ANNOTATION_WORKERS,
    GPU_RESOURCE,
    LABEL_ATTEMPT,
    LABEL_INSTALLATION,
    LABEL_JOB,
    LABEL_MANAGED_BY,
    LABEL_WORKER,
    MANAGED_BY,
)
from k8s.types import (
    GangObservation,
    GangPhase,
    NodeInfo,
    PodPhase,
    Resources,
    Taint,
    WorkerObservation,
)

Obj = Mapping[str, Any]
FLAVOR_LABEL = "yushan.io/flavor"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
RETRYABLE_REASONS = frozenset({"NodeLost", "Evicted", "Preempted", "Terminated", "Shutdown"})


_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]{0,2})$")


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes quantity ("500m", "16Gi", "1e3", 8) as a Decimal; 0 if malformed."""
    match = _QUANTITY.match(str(value).strip())
    if match is None or match.group(2) not in _SUFFIXES:
        return Decimal(0)
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except ArithmeticError:
        return Decimal(0)


def resources_of(amounts: Mapping[str, object] | None) -> Resources:
    """Resources from a Kubernetes resource list such as ``{"cpu": "500m", "memory": "1Gi"}``."""
    amounts = amounts or {}
    return Resources(
        gpu=int(parse_quantity(amounts.get(GPU_RESOURCE, 0))),
        cpu_milli=int(parse_quantity(amounts.get("cpu", 0)) * 1000),
        memory_bytes=int(parse_quantity(amounts.get("memory", 0))),
    )


def _container_requests(container: Obj) -> Resources:
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    # An unset request defaults to the limit, as the API server does.
    return resources_of(limits | (resources.get("requests") or {}))


def pod_requests(pod: Obj) -> Resources:
    """Effective requests: the larger of the containers' sum and any single init container."""
    spec = pod.get("spec") or {}
    total = sum((_container_requests(c) for c in spec.get("containers") or []), Resources())
    for init in spec.get("initContainers") or []:
        need = _container_requests(init)
        total = Resources(
            max(total.gpu, need.gpu),
            max(total.cpu_milli, need.cpu_milli),
            max(total.memory_bytes, need.memory_bytes),
        )
    return total


def is_managed(obj: Obj, installation: str | None = None) -> bool:
    """Whether Yushan created ``obj`` — with ``installation``, this installation: an object
    stamped with another identity is not ours (objects without a stamp predate identities
    and count as ours)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        return False
    stamp = labels.get(LABEL_INSTALLATION)
    return installation is None or stamp is None or stamp == installation


def installation_of(obj: Obj) -> str | None:
    stamp = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_INSTALLATION)
    return str(stamp) if stamp else None


def pod_phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def foreign_usage(pods: Iterable[Obj], installation: str | None = None) -> dict[str, Resources]:
    """Requests of non-terminal pods this installation did not create, summed per bound node
    (another installation's pods are foreign too: their GPUs are taken)."""
    usage: dict[str, Resources] = defaultdict(Resources)
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and not is_managed(pod, installation) and pod_phase(pod) not in TERMINAL_PHASES:
            usage[node] = usage[node] + pod_requests(pod)
    return dict(usage)


def _is_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_info(node: Obj, foreign: Resources | None = None) -> NodeInfo:
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    labels = dict(metadata.get("labels") or {})
    taints = tuple(
        Taint(key=t.get("key", ""), effect=t.get("effect", ""), value=t.get("value"))
        for t in spec.get("taints") or []
    )
    return NodeInfo(
        name=str(metadata.get("name", "")),
        labels=labels,
        taints=taints,
        capacity=resources_of(status.get("capacity")),
        allocatable=resources_of(status.get("allocatable")),
        ready=_is_ready(node),
        unschedulable=bool(spec.get("unschedulable", False)),
        foreign=foreign or Resources(),
        flavor=labels.get(FLAVOR_LABEL),
    )


def node_infos(
    nodes: Iterable[Obj], pods: Iterable[Obj], installation: str | None = None
) -> list[NodeInfo]:
    usage = foreign_usage(pods, installation)
    infos = [node_info(n, usage.get((n.get("metadata") or {}).get("name", ""))) for n in nodes]
    return sorted(infos, key=lambda info: info.name)


def _int_or(value: object, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _terminated_state(pod: Obj) -> Obj:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "terminated" in state:
            return cast(Obj, state["terminated"])
    return {}


def _container_times(pod: Obj) -> tuple[float | None, float | None]:
    """When the first container started running and when it terminated (epoch seconds)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "terminated" in state:
            terminated = state["terminated"] or {}
            return _epoch(terminated.get("startedAt")), _epoch(terminated.get("finishedAt"))
        if "running" in state:
            return _epoch((state["running"] or {}).get("startedAt")), None
    return None, None


def _epoch(value: object) -> float | None:
    """An RFC 3339 time (``metav1.Time``, or a datetime from the official client) as epoch
    seconds; ``None`` when absent or unreadable."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def worker_observation(pod: Obj) -> WorkerObservation:
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    status = pod.get("status") or {}
    terminated = _terminated_state(pod)
    exit_code = terminated.get("exitCode")
    phase = pod_phase(pod)
    started_at, finished_at = _container_times(pod)
    return WorkerObservation(
        worker=_int_or(labels.get(LABEL_WORKER), -1),
        name=str(metadata.get("name", "")),
        namespace=str(metadata.get("namespace", "")),
        attempt=_int_or(labels.get(LABEL_ATTEMPT), 0),
        node=(pod.get("spec") or {}).get("nodeName"),
        phase=cast(PodPhase, phase if phase in _POD_PHASES else "Unknown"),
        terminating=metadata.get("deletionTimestamp") is not None,
        exit_code=int(exit_code) if exit_code is not None else None,
        reason=status.get("reason") or terminated.get("reason"),
        message=status.get("message") or terminated.get("message"),
        started_at=started_at,
        finished_at=finished_at,
    )


_POD_PHASES = frozenset({"Pending", "Running", "Succeeded", "Failed", "Unknown"})


def _failure_message(worker: WorkerObservation) -> str:
    if worker.exit_code is not None:
        return f"worker {worker.worker} exited with code {worker.exit_code} ({worker.reason})"
    detail = f": {worker.message}" if worker.message else ""
    return f"worker {worker.worker} failed ({worker.reason or 'unknown reason'}){detail}"


def _lost_node(worker: WorkerObservation, nodes: Mapping[str, NodeInfo]) -> str | None:
    if worker.phase in TERMINAL_PHASES or worker.node is None:
        return None
    node = nodes.get(worker.node)
    if node is None:
        return f"node {worker.node} of worker {worker.worker} is gone"
    if not node.ready:
        return f"node {worker.node} of worker {worker.worker} is NotReady"
    return None


def gang_observation(
    job_id: str, pods: Sequence[Obj], nodes: Mapping[str, NodeInfo] | None = None
) -> GangObservation:
    """Fold the pods of one job (any attempts) into its observation.

    ``nodes`` enables node-loss detection; without it, workers on lost nodes look as their pod
    status says.
    """
    workers = [worker_observation(p) for p in pods]
    attempt = max((w.attempt for w in workers), default=0)
    current = tuple(sorted((w for w in workers if w.attempt == attempt), key=lambda w: w.worker))
    expected = max(
        (
            _int_or(((p.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_WORKERS), 0)
            for p in pods
        ),
        default=0,
    )
    namespace = current[0].namespace if current else ""
    base = GangObservation(job_id, namespace, attempt, max(expected, len(current)), "missing")
    if not current:
        return base
    return _classify(base, current, nodes)


def _with(
    base: GangObservation, phase: GangPhase, pods: tuple[WorkerObservation, ...], **extra: Any
) -> GangObservation:
    return GangObservation(
        job_id=base.job_id,
        namespace=base.namespace,
        attempt=base.attempt,
        workers=base.workers,
        phase=phase,
        pods=pods,
        **extra,
    )


def _classify(
    base: GangObservation,
    current: tuple[WorkerObservation, ...],
    nodes: Mapping[str, NodeInfo] | None,
) -> GangObservation:
    failed = [w for w in current if w.phase == "Failed"]
    if failed:
        first = failed[0]
        return _with(
            base,
            "failed",
            current,
            exit_code=first.exit_code,
            reason=first.reason or "Failed",
            message=_failure_message(first),
            retryable=first.reason in RETRYABLE_REASONS,
        )
    if nodes is not None:
        lost = [msg for w in current if (msg := _lost_node(w, nodes)) is not None]
        if lost:
            return _with(
                base,
                "failed",
                current,
                reason="NodeLost",
                message="; ".join(lost),
                retryable=True,
            )
    phases = {w.phase for w in current}
    if any(w.terminating for w in current):
        phase: GangPhase = "terminating"
    elif len(current) < base.workers and phases != {"Pending"}:
        return _with(
            base,
            "failed",
            current,
            reason="PodsLost",
            message=_vanished(base, current),
            retryable=True,
        )
    elif len(current) < base.workers:
        phase = "partial"
    elif phases == {"Succeeded"}:
        phase = "succeeded"
    elif phases <= {"Running", "Succeeded"}:
        phase = "running"
    else:
        phase = "pending"
    return _with(base, phase, current)


def _vanished(base: GangObservation, current: tuple[WorkerObservation, ...]) -> str:
    present = {w.worker for w in current}
    gone = [str(i) for i in range(base.workers) if i not in present]
    return f"worker(s) {', '.join(gone)} vanished after the gang had started"


def job_of(pod: Obj, installation: str | None = None) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    job = labels.get(LABEL_JOB)
    return str(job) if job and is_managed(pod, installation) else None


def gang_observations(
    pods: Iterable[Obj],
    nodes: Mapping[str, NodeInfo] | None = None,
    installation: str | None = None,
) -> dict[str, GangObservation]:
    """Observations of every job that has at least one of this installation's pods."""
    by_job: dict[str, list[Obj]] = defaultdict(list)
    for pod in pods:
        job = job_of(pod, installation)
        if job is not None:
            by_job[job].append(pod)
    return {job: gang_observation(job, job_pods, nodes) for job, job_pods in by_job.items()}
