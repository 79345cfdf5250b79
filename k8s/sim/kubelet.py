"""The simulated kubelet: drives every pod of the embedded cluster through its lifecycle.

One background thread owns all transitions. It learns about pods and nodes from the store's
change feed and keeps a heap of timed steps, so no thread is spawned per pod:

* a pod bound to a Ready node is admitted (or rejected like the real kubelet with
  ``OutOfnvidia.com/gpu``, ``OutOfcpu``, ``OutOfmemory``, ``OutOfpods`` or ``NodeAffinity``
  when the non-terminal pods already admitted there leave too little allocatable), then becomes
  Running after the startup delay;
* a Running pod finishes after ``sim.yushan.io/duration-seconds`` (default 60): Succeeded, or
  Failed when ``sim.yushan.io/exit-code`` is non-zero; ``spec.activeDeadlineSeconds`` counted
  from admission fails it with ``DeadlineExceeded`` first;
* a pod marked for graceful deletion is removed when its grace period has passed;
* pods bound to a NotReady or unknown node stay Pending until the node becomes Ready;
  pods of a deleted node are failed and removed, like the pod garbage collector does.
  Pods already running on a node that turns NotReady keep running (the real node lifecycle
  controller would only evict them after five minutes).

``restartPolicy`` is not simulated: every container runs once, as with ``Never``.

Every simulated duration is multiplied by ``time_scale``.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from k8s.sim import podstatus
from k8s.sim.errors import ApiError
from k8s.sim.objects import (
    DEFAULT_DURATION_SECONDS,
    DURATION_ANNOTATION,
    EXIT_CODE_ANNOTATION,
    TERMINAL_PHASES,
    format_quantity,
    pod_demand,
    quantity,
    timestamp,
)
from k8s.sim.store import Change, Key, Obj, ObjectStore, object_key

_POD_NETWORK = ipaddress.IPv4Network("10.244.0.0/14")
_PROGRESS_STEPS = 4


@dataclass(order=True, slots=True)
class _Timer:
    due: float
    sequence: int
    action: str = field(compare=False)
    key: Key = field(compare=False)
    uid: str = field(compare=False)


@dataclass(slots=True)
class _Admission:
    node: str
    demand: dict[str, Decimal]


class PodLogs:
    """Container output of simulated pods, with waiting for ``follow`` streams."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._lines: dict[str, list[str]] = {}
        self._closed: set[str] = set()

    def append(self, uid: str, line: str, *, close: bool = False) -> None:
        with self._cond:
            self._lines.setdefault(uid, []).append(line)
            if close:
                self._closed.add(uid)
            self._cond.notify_all()

    def lines(self, uid: str) -> list[str]:
        with self._cond:
            return list(self._lines.get(uid, ()))

    def follow(
        self, uid: str, start: int, should_stop: Callable[[], bool], poll: float = 0.2
    ) -> Iterator[str]:
        """Lines from index ``start`` on, waiting for new ones until the container ends."""
        position = start
        while True:
            with self._cond:
                lines = self._lines.get(uid, [])
                if position >= len(lines) and uid not in self._closed and not should_stop():
                    self._cond.wait(poll)
                lines = self._lines.get(uid, [])
                fresh = lines[position:]
                finished = uid in self._closed
            yield from fresh
            position += len(fresh)
            if (finished and not fresh) or should_stop():
                return

    def forget(self, uid: str) -> None:
        with self._cond:
            self._lines.pop(uid, None)
            self._closed.add(uid)
            self._cond.notify_all()


class SimKubelet:
    """Runs the lifecycle of every pod of one :class:`ObjectStore`."""

    def __init__(
        self,
        store: ObjectStore,
        logs: PodLogs,
        *,
        time_scale: float = 1.0,
        startup_delay: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._logs = logs
        self._scale = time_scale
        self._startup_delay = startup_delay
        self._clock = clock
        self._cond = threading.Condition()
        self._inbox: deque[Change] = deque()
        self._timers: list[_Timer] = []
        self._sequence = itertools.count()
        self._admitted: dict[str, _Admission] = {}
        self._parked: dict[str, Key] = {}
        self._deleting: set[str] = set()
        self._pod_ips = itertools.count(2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-kubelet", daemon=True)
        store.add_listener(self._on_change)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _on_change(self, change: Change) -> None:
        if change.resource in ("pods", "nodes"):
            with self._cond:
                self._inbox.append(change)
                self._cond.notify_all()

    def _run(self) -> None:
        while not self._stopped.is_set():
            changes, timers = self._next_work()
            for change in changes:
                self._guarded(self._handle_change, change)
            for timer in timers:
                self._guarded(self._handle_timer, timer)

    def _guarded(self, step: Callable[[Any], None], item: Any) -> None:
        # Objects can vanish or change between the event and our write; the next event for
        # the same pod brings the kubelet back in line, so a failed step is simply dropped.
        with contextlib.suppress(ApiError):
            step(item)

    def _next_work(self) -> tuple[list[Change], list[_Timer]]:
        with self._cond:
            while not self._stopped.is_set():
                now = self._clock()
                due: list[_Timer] = []
                while self._timers and self._timers[0].due <= now:
                    due.append(heapq.heappop(self._timers))
                if self._inbox or due:
                    changes = list(self._inbox)
                    self._inbox.clear()
                    return changes, due
                wait = self._timers[0].due - now if self._timers else 1.0
                self._cond.wait(min(wait, 1.0))
        return [], []

    def _schedule(self, delay: float, action: str, pod: Obj) -> None:
        timer = _Timer(
            self._clock() + delay * self._scale,
            next(self._sequence),
            action,
            object_key(pod),
            pod["metadata"]["uid"],
        )
        with self._cond:
            heapq.heappush(self._timers, timer)

    # -- change feed ------------------------------------------------------------------------

    def _handle_change(self, change: Change) -> None:
        if change.resource == "nodes":
            self._handle_node_change(change)
            return
        uid = change.obj["metadata"]["uid"]
        if change.type == "DELETED":
            self._release(uid)
            self._parked.pop(uid, None)
            self._deleting.discard(uid)
            self._logs.forget(uid)
            return
        pod = self._store.find("pods", object_key(change.obj))
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        if pod["metadata"].get("deletionTimestamp"):
            self._begin_graceful_deletion(pod)
        elif self._needs_admission(pod):
            self._admit(pod)

    def _needs_admission(self, pod: Obj) -> bool:
        uid = pod["metadata"]["uid"]
        return (
            bool(pod["spec"].get("nodeName"))
            and pod["status"].get("phase") == "Pending"
            and uid not in self._admitted
            and uid not in self._parked
        )

    def _handle_node_change(self, change: Change) -> None:
        name = change.obj["metadata"]["name"]
        if change.type == "DELETED":
            self._collect_pods_of_lost_node(name)
            return
        if not _is_ready(change.obj):
            return
        for uid, key in list(self._parked.items()):
            pod = self._store.find("pods", key)
            if pod is not None and pod["spec"].get("nodeName") == name:
                del self._parked[uid]
                if self._needs_admission(pod):
                    self._admit(pod)

    def _collect_pods_of_lost_node(self, node: str) -> None:
        pods, _ = self._store.list_objects("pods")
        for pod in pods:
            if pod["spec"].get("nodeName") != node:
                continue
            if pod["status"].get("phase") not in TERMINAL_PHASES:
                self._write_status(
                    pod,
                    lambda p: podstatus.terminated(p, 137, "NodeLost", f"node {node} was deleted"),
                )
            self._store.delete("pods", object_key(pod))

    # -- admission --------------------------------------------------------------------------

    def _admit(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        node_name = pod["spec"]["nodeName"]
        node = self._store.find("nodes", ("", node_name))
        if node is None or not _is_ready(node):
            self._parked[uid] = object_key(pod)
            return
        rejection = self._admission_failure(pod, node)
        if rejection is not None:
            reason, message = rejection
            self._write_status(pod, lambda p: podstatus.rejected(p, reason, message))
            self._record_event(pod, "Warning", reason, message)
            return
        self._admitted[uid] = _Admission(node_name, pod_demand(pod))
        host_ip = _internal_ip(node)
        self._write_status(pod, lambda p: podstatus.admitted(p, host_ip))
        self._schedule(self._startup_delay, "start", pod)
        deadline = pod["spec"].get("activeDeadlineSeconds")
        if deadline is not None:
            self._schedule(float(deadline), "deadline", pod)

    def _admission_failure(self, pod: Obj, node: Obj) -> tuple[str, str] | None:
        labels = node["metadata"].get("labels") or {}
        selector = pod["spec"].get("nodeSelector") or {}
        if any(labels.get(key) != value for key, value in selector.items()):
            return "NodeAffinity", "Pod was rejected: Predicate NodeAffinity failed"
        allocatable = node["status"].get("allocatable") or {}
        node_name = node["metadata"]["name"]
        residents = [a for a in self._admitted.values() if a.node == node_name]
        if len(residents) + 1 > int(allocatable.get("pods", "110")):
            return "OutOfpods", "Pod was rejected: Node didn't have enough resource: pods"
        for resource, requested in pod_demand(pod).items():
            if requested == 0:
                continue
            capacity = quantity(allocatable.get(resource, "0"))
            used = sum((a.demand.get(resource, Decimal(0)) for a in residents), Decimal(0))
            if used + requested > capacity:
                return (
                    f"OutOf{resource}",
                    f"Pod was rejected: Node didn't have enough resource: {resource}, "
                    f"requested: {format_quantity(requested)}, used: {format_quantity(used)}, "
                    f"capacity: {format_quantity(capacity)}",
                )
        return None

    def _release(self, uid: str) -> None:
        self._admitted.pop(uid, None)

    # -- timed steps ------------------------------------------------------------------------

    def _handle_timer(self, timer: _Timer) -> None:
        pod = self._store.find("pods", timer.key)
        if pod is None or pod["metadata"]["uid"] != timer.uid:
            return
        if timer.action == "remove":
            self._release(timer.uid)
            self._store.delete("pods", timer.key)
            return
        if pod["status"].get("phase") in TERMINAL_PHASES:
            return
        if timer.action == "start":
            self._start(pod)
        elif timer.action == "progress":
            self._progress(pod)
        elif timer.action == "finish":
            self._finish(pod, _exit_code(pod), None, None)
        elif timer.action == "deadline":
            self._finish(
                pod,
                137,
                "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline",
            )

    def _start(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp") or pod["status"].get("phase") != "Pending":
            return
        pod_ip = str(_POD_NETWORK[next(self._pod_ips)])
        self._write_status(pod, lambda p: podstatus.running(p, pod_ip))
        node = pod["spec"]["nodeName"]
        self._log(pod, f"sim: container started on node {node}")
        self._record_event(pod, "Normal", "Started", "Started container")
        duration = _duration(pod)
        for step in range(1, _PROGRESS_STEPS):
            self._schedule(duration * step / _PROGRESS_STEPS, "progress", pod)
        self._schedule(duration, "finish", pod)

    def _progress(self, pod: Obj) -> None:
        if pod["status"].get("phase") == "Running":
            done = len(self._logs.lines(pod["metadata"]["uid"]))
            self._log(pod, f"sim: progress {done}/{_PROGRESS_STEPS}")

    def _finish(self, pod: Obj, exit_code: int, reason: str | None, message: str | None) -> None:
        self._release(pod["metadata"]["uid"])
        self._write_status(pod, lambda p: podstatus.terminated(p, exit_code, reason, message))
        self._log(pod, f"sim: container exited with code {exit_code}", close=True)
        if reason:
            self._record_event(pod, "Warning", reason, message or reason)

    def _begin_graceful_deletion(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self._deleting:
            return
        self._deleting.add(uid)
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        self._record_event(pod, "Normal", "Killing", "Stopping container")
        self._schedule(grace, "remove", pod)

    def _write_status(self, pod: Obj, step: Callable[[Obj], Obj]) -> None:
        """Apply a status step to ``pod`` unless a different pod now has its name."""
        uid = pod["metadata"]["uid"]

        def apply(current: Obj) -> Obj | None:
            return step(current) if current["metadata"]["uid"] == uid else None

        self._store.update("pods", object_key(pod), apply)

    # -- side channels ----------------------------------------------------------------------

    def _log(self, pod: Obj, message: str, *, close: bool = False) -> None:
        self._logs.append(pod["metadata"]["uid"], f"{timestamp()} {message}", close=close)

    def _record_event(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        metadata = pod["metadata"]
        now = timestamp()
        node = pod["spec"].get("nodeName", "")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{metadata['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": metadata["namespace"],
                "name": metadata["name"],
                "uid": metadata["uid"],
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": node},
            "reportingComponent": "kubelet",
            "reportingInstance": node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._store.create("events", event)


def _is_ready(node: Obj) -> bool:
    return any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in node.get("status", {}).get("conditions") or []
    )


def _internal_ip(node: Obj) -> str:
    for address in node.get("status", {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address["address"])
    return "10.0.0.1"


def _annotation(pod: Obj, name: str) -> str | None:
    value = (pod["metadata"].get("annotations") or {}).get(name)
    return None if value is None else str(value)


def _duration(pod: Obj) -> float:
    raw = _annotation(pod, DURATION_ANNOTATION)
    try:
        return max(0.0, float(raw)) if raw is not None else DEFAULT_DURATION_SECONDS
    except ValueError:
        return DEFAULT_DURATION_SECONDS


def _exit_code(pod: Obj) -> int:
    raw = _annotation(pod, EXIT_CODE_ANNOTATION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 1
