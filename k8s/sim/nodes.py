"""Nodes of the embedded cluster, described in a YAML file.

Schema (one mapping with a ``nodes`` list; every entry describes one node or a group)::

    nodes:
      - name: h100          # node name; with ``count`` it is a prefix: h100-0, h100-1, ...
        count: 4            # optional, default 1 (then the node is named exactly ``name``)
        start: 0            # optional first index of the group, default 0
        gpus: 8             # nvidia.com/gpu capacity, default 0
        cpu: "96"           # quantity, default "32"
        memory: "1440Gi"    # quantity, default "256Gi"
        pods: 110           # max pods, default 110
        ready: true         # Ready condition, default true
        labels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
        taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]

Every node also gets the well-known ``kubernetes.io/hostname``, ``kubernetes.io/os`` and
``kubernetes.io/arch`` labels. Allocatable equals capacity. The default file,
``default-cluster.yaml`` next to this module, holds 4 nodes with 8 H100 each and 4 with 8 V100 each.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from k8s.sim.errors import BadRequest, ClusterConfigError
from k8s.sim.objects import GPU_RESOURCE, quantity, timestamp

DEFAULT_NODES_FILE = Path(__file__).with_name("default-cluster.yaml")
_NODE_NETWORK = ipaddress.IPv4Network("10.0.0.0/16")


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One simulated node before it becomes a ``Node`` object."""

    name: str
    gpus: int = 0
    cpu: str = "32"
    memory: str = "256Gi"
    pods: int = 110
    ready: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()


_FIELDS = {"name", "count", "start", "gpus", "cpu", "memory", "pods", "ready", "labels", "taints"}


def _entry_specs(entry: Mapping[str, Any]) -> list[NodeSpec]:
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ClusterConfigError(f"unknown node fields {sorted(unknown)} in {dict(entry)}")
    if "name" not in entry:
        raise ClusterConfigError(f"node entry without a name: {dict(entry)}")
    try:
        count = int(entry.get("count", 1))
        start = int(entry.get("start", 0))
        base = NodeSpec(
            name=str(entry["name"]),
            gpus=int(entry.get("gpus", 0)),
            cpu=str(entry.get("cpu", "32")),
            memory=str(entry.get("memory", "256Gi")),
            pods=int(entry.get("pods", 110)),
            ready=bool(entry.get("ready", True)),
            labels={str(k): str(v) for k, v in (entry.get("labels") or {}).items()},
            taints=tuple(
                {str(k): str(v) for k, v in taint.items()} for taint in entry.get("taints") or []
            ),
        )
        quantity(base.cpu)
        quantity(base.memory)
    except (TypeError, ValueError, AttributeError, BadRequest) as error:
        raise ClusterConfigError(f"invalid node entry {dict(entry)}: {error}") from error
    if "count" not in entry:
        return [base]
    return [
        NodeSpec(
            name=f"{base.name}-{index}",
            gpus=base.gpus,
            cpu=base.cpu,
            memory=base.memory,
            pods=base.pods,
            ready=base.ready,
            labels=base.labels,
            taints=base.taints,
        )
        for index in range(start, start + count)
    ]


def load_node_specs(path: Path | None = None) -> list[NodeSpec]:
    """Read a nodes file (the default cluster when ``path`` is ``None``)."""
    source = path or DEFAULT_NODES_FILE
    try:
        document = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ClusterConfigError(f"cannot read nodes file {source}: {error}") from error
    if not isinstance(document, Mapping) or not isinstance(document.get("nodes"), list):
        raise ClusterConfigError(f"{source}: expected a mapping with a 'nodes' list")
    specs = [spec for entry in document["nodes"] for spec in _entry_specs(entry)]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ClusterConfigError(f"{source}: duplicate node names")
    return specs


def ready_condition(ready: bool) -> dict[str, Any]:
    now = timestamp()
    return {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "KubeletReady" if ready else "KubeletNotReady",
        "message": "kubelet is posting ready status" if ready else "simulated node not ready",
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }


def node_object(spec: NodeSpec, index: int) -> dict[str, Any]:
    """The ``Node`` object for ``spec``; ``index`` picks its InternalIP."""
    capacity = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": str(spec.pods),
        GPU_RESOURCE: str(spec.gpus),
        "ephemeral-storage": "1Ti",
    }
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        **spec.labels,
    }
    node_spec: dict[str, Any] = {"podCIDR": f"10.244.{index % 256}.0/24"}
    if spec.taints:
        node_spec["taints"] = [dict(taint) for taint in spec.taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels, "annotations": {}},
        "spec": node_spec,
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [ready_condition(spec.ready)],
            "addresses": [
                {"type": "InternalIP", "address": str(_NODE_NETWORK[index + 10])},
                {"type": "Hostname", "address": spec.name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": f"sim-boot-{spec.name}",
                "containerRuntimeVersion": "containerd://1.7.0-sim",
                "kernelVersion": "6.1.0-sim",
                "kubeProxyVersion": "v1.36.0",
                "kubeletVersion": "v1.36.0-yushan-sim",
                "machineID": f"sim-machine-{spec.name}",
                "operatingSystem": "linux",
                "osImage": "Yushan simulated node",
                "systemUUID": f"sim-{spec.name}",
            },
            "phase": "Running",
        },
    }


NODE_LEASE_NAMESPACE = "kube-node-lease"


def node_lease(node: dict[str, Any]) -> dict[str, Any]:
    """The heartbeat Lease a kubelet keeps in ``kube-node-lease`` (kubectl describes it)."""
    metadata = node["metadata"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": metadata["name"],
            "namespace": NODE_LEASE_NAMESPACE,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                }
            ],
        },
        "spec": {
            "holderIdentity": metadata["name"],
            "leaseDurationSeconds": 40,
            "renewTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }
