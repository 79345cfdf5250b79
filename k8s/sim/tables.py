"""Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get``.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever columns
the server sends; without them it only shows NAME and AGE. The columns mirror the real API
server's for pods, nodes, namespaces, services, events and leases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from k8s.sim.resources import Resource

Obj = Mapping[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]
"""(name, type, priority, cell) — priority 1 columns only show with ``-o wide``."""


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def age(obj: Obj) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return human_duration((dt.datetime.now(dt.UTC) - then).total_seconds())


def human_duration(seconds: float) -> str:
    """kubectl's short durations: ``45s``, ``3m12s``, ``25m``, ``5h10m``, ``3d``."""
    total = max(0, int(seconds))
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 120:
        return f"{total}s"
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{days}d{hours % 24}h" if days < 8 and hours % 24 else f"{days}d"


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _pod_status(pod: Obj) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status", {})
    for container in status.get("containerStatuses") or []:
        state = container.get("state", {})
        for phase in ("waiting", "terminated"):
            if state.get(phase, {}).get("reason"):
                return str(state[phase]["reason"])
    return str(status.get("reason") or status.get("phase") or "Unknown")


def _pod_ready(pod: Obj) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    ready = sum(1 for status in statuses if status.get("ready"))
    return f"{ready}/{len(pod.get('spec', {}).get('containers') or [])}"


def _node_status(node: Obj) -> str:
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    status = "Ready" if ready else "NotReady"
    if node.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _ports(service: Obj) -> str:
    ports = service.get("spec", {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


_COLUMNS: dict[str, list[Column]] = {
    "pods": [
        ("Name", "string", 0, _name),
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        ("Restarts", "string", 0, lambda _pod: "0"),
        ("Age", "string", 0, age),
        ("IP", "string", 1, lambda pod: pod.get("status", {}).get("podIP") or "<none>"),
        ("Node", "string", 1, lambda pod: pod.get("spec", {}).get("nodeName") or "<none>"),
    ],
    "nodes": [
        ("Name", "string", 0, _name),
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, lambda _node: "<none>"),
        ("Age", "string", 0, age),
        ("Version", "string", 0, lambda node: node["status"]["nodeInfo"]["kubeletVersion"]),
        (
            "GPU",
            "string",
            1,
            lambda node: node["status"]["allocatable"].get("nvidia.com/gpu", "0"),
        ),
    ],
    "namespaces": [
        ("Name", "string", 0, _name),
        ("Status", "string", 0, lambda ns: ns.get("status", {}).get("phase", "Active")),
        ("Age", "string", 0, age),
    ],
    "services": [
        ("Name", "string", 0, _name),
        ("Type", "string", 0, lambda svc: svc["spec"].get("type", "ClusterIP")),
        ("Cluster-IP", "string", 0, lambda svc: svc["spec"].get("clusterIP", "<none>")),
        ("External-IP", "string", 0, lambda _svc: "<none>"),
        ("Port(s)", "string", 0, _ports),
        ("Age", "string", 0, age),
    ],
    "events": [
        ("Last Seen", "string", 0, age),
        ("Type", "string", 0, lambda ev: ev.get("type", "")),
        ("Reason", "string", 0, lambda ev: ev.get("reason", "")),
        (
            "Object",
            "string",
            0,
            lambda ev: (
                f"{ev['involvedObject'].get('kind', '').lower()}/"
                f"{ev['involvedObject'].get('name', '')}"
            ),
        ),
        ("Message", "string", 0, lambda ev: ev.get("message", "")),
    ],
    "leases": [
        ("Name", "string", 0, _name),
        ("Holder", "string", 0, lambda lease: lease.get("spec", {}).get("holderIdentity") or ""),
        ("Age", "string", 0, age),
    ],
}
_DEFAULT_COLUMNS: list[Column] = [("Name", "string", 0, _name), ("Age", "string", 0, age)]


def table(resource: Resource, objects: Iterable[Obj], revision: int) -> dict[str, Any]:
    columns = _COLUMNS.get(resource.plural, _DEFAULT_COLUMNS)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(revision)},
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": priority,
            }
            for name, kind, priority, _cell in columns
        ],
        "rows": [
            {
                "cells": [cell(obj) for _name, _kind, _priority, cell in columns],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
            for obj in objects
        ],
    }
