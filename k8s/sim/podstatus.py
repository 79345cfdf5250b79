"""Pod status shapes for each lifecycle step of the simulated kubelet.

Each function takes a pod (a private copy) and returns it with ``status`` rewritten the way the
real kubelet reports that step, so clients see realistic ``phase``, ``conditions`` and
``containerStatuses``.
"""

from __future__ import annotations

from typing import Any

from k8s.sim.objects import timestamp

Pod = dict[str, Any]


def _condition(kind: str, status: bool, now: str, reason: str | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    if reason:
        condition["reason"] = reason
    return condition


def _container_statuses(pod: Pod, state: dict[str, Any], ready: bool) -> list[dict[str, Any]]:
    return [
        {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "containerID": f"containerd://sim-{pod['metadata']['uid']}-{container['name']}",
            "ready": ready,
            "started": "running" in state,
            "restartCount": 0,
            "state": state,
            "lastState": {},
        }
        for container in pod["spec"].get("containers") or []
    ]


def initial_status(pod: Pod) -> dict[str, Any]:
    """What the API server stores on create: Pending, and PodScheduled if already bound."""
    now = timestamp()
    status: dict[str, Any] = {"phase": "Pending", "qosClass": qos_class(pod)}
    if pod["spec"].get("nodeName"):
        status["conditions"] = [_condition("PodScheduled", True, now)]
    return status


def bound(pod: Pod) -> Pod:
    now = timestamp()
    conditions = [c for c in pod["status"].get("conditions") or [] if c["type"] != "PodScheduled"]
    pod["status"]["conditions"] = [_condition("PodScheduled", True, now), *conditions]
    return pod


def admitted(pod: Pod, host_ip: str) -> Pod:
    now = timestamp()
    status = pod["status"]
    status.update(hostIP=host_ip, hostIPs=[{"ip": host_ip}], startTime=now)
    status["conditions"] = [
        _condition("PodScheduled", True, now),
        _condition("Initialized", True, now),
        _condition("ContainersReady", False, now, "ContainersNotReady"),
        _condition("Ready", False, now, "ContainersNotReady"),
    ]
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    status["containerStatuses"] = _container_statuses(pod, waiting, ready=False)
    return pod


def running(pod: Pod, pod_ip: str) -> Pod:
    now = timestamp()
    status = pod["status"]
    status.update(phase="Running", podIP=pod_ip, podIPs=[{"ip": pod_ip}])
    status["conditions"] = [
        _condition("PodScheduled", True, now),
        _condition("Initialized", True, now),
        _condition("ContainersReady", True, now),
        _condition("Ready", True, now),
    ]
    status["containerStatuses"] = _container_statuses(
        pod, {"running": {"startedAt": now}}, ready=True
    )
    return pod


def terminated(
    pod: Pod, exit_code: int, reason: str | None = None, message: str | None = None
) -> Pod:
    """Succeeded with exit code 0, Failed otherwise; ``reason`` is the pod-level reason."""
    now = timestamp()
    status = pod["status"]
    started = status.get("startTime", now)
    for container_status in status.get("containerStatuses") or []:
        started = container_status["state"].get("running", {}).get("startedAt", started)
    status["phase"] = "Succeeded" if exit_code == 0 and reason is None else "Failed"
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    status["conditions"] = [
        _condition("PodScheduled", True, now),
        _condition("Initialized", True, now),
        _condition("ContainersReady", False, now, "PodCompleted"),
        _condition("Ready", False, now, "PodCompleted"),
    ]
    state = {
        "terminated": {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": started,
            "finishedAt": now,
            "containerID": f"containerd://sim-{pod['metadata']['uid']}",
        }
    }
    status["containerStatuses"] = _container_statuses(pod, state, ready=False)
    return pod


def rejected(pod: Pod, reason: str, message: str) -> Pod:
    """Kubelet admission failure: Failed without ever starting, like ``OutOfnvidia.com/gpu``."""
    pod["status"].update(phase="Failed", reason=reason, message=message, startTime=timestamp())
    return pod


def qos_class(pod: Pod) -> str:
    containers = pod["spec"].get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits = r.get("limits") or {}
        requests = r.get("requests") or {}
        if any(name not in limits for name in ("cpu", "memory")):
            return "Burstable"
        if any(requests.get(name, limits[name]) != limits[name] for name in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"
