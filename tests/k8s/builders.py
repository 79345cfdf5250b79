"""Fluent builders for the adapter's test objects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from k8s.types import WorkloadSpec

H100_NODES = tuple(f"h100-{i}" for i in range(4))
"""Node names of the embedded cluster's default H100 pool."""


def unique_job_id(prefix: str = "j") -> str:
    """Random, so tests against a shared real cluster never collide."""
    return f"{prefix}{uuid.uuid4().hex[:9]}"


@dataclass
class WorkloadBuilder:
    fields: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> WorkloadBuilder:
        return WorkloadBuilder(self.fields | changes)

    def workers(self, count: int, nodes: tuple[str, ...] = H100_NODES) -> WorkloadBuilder:
        placement = tuple(nodes[i % len(nodes)] for i in range(count))
        return self.with_(workers=count, placement=placement)

    def gpus(self, per_worker: int) -> WorkloadBuilder:
        return self.with_(gpus_per_worker=per_worker)

    def runtime(self, seconds: int) -> WorkloadBuilder:
        return self.with_(max_runtime_seconds=seconds)

    def lasting(self, seconds: float) -> WorkloadBuilder:
        """Simulated run time (embedded cluster annotation)."""
        return self.annotate(**{"sim.yushan.io/duration-seconds": str(seconds)})

    def exiting(self, code: int) -> WorkloadBuilder:
        return self.annotate(**{"sim.yushan.io/exit-code": str(code)})

    def annotate(self, **annotations: str) -> WorkloadBuilder:
        merged = dict(self.fields.get("annotations", {})) | annotations
        return self.with_(annotations=merged)

    def attempt(self, attempt: int) -> WorkloadBuilder:
        return self.with_(attempt=attempt)

    def build(self) -> WorkloadSpec:
        return WorkloadSpec(**self.fields)


def a_workload(job_id: str | None = None, tenant: str = "physics") -> WorkloadBuilder:
    return WorkloadBuilder(
        {
            "job_id": job_id or unique_job_id(),
            "job_name": "train-llm",
            "tenant": tenant,
            "user": "alice@physics.example.edu",
            "namespace": f"yushan-{tenant}",
            "image": "ghcr.io/example/train:1.0",
            "workers": 1,
            "gpus_per_worker": 1,
            "cpu_milli": 4000,
            "memory_bytes": 16 * 2**30,
            "placement": (H100_NODES[0],),
            "node_labels": {"yushan.io/flavor": "h100"},
        }
    )


@dataclass
class PodBuilder:
    """A pod as the API returns it (JSON dict), for the pure observation functions."""

    pod: dict[str, Any]

    def phase(self, phase: str) -> PodBuilder:
        self.pod["status"]["phase"] = phase
        return self

    def on(self, node: str) -> PodBuilder:
        self.pod["spec"]["nodeName"] = node
        return self

    def exited(self, code: int, reason: str = "Error") -> PodBuilder:
        terminated = {"exitCode": code, "reason": reason}
        self.pod["status"]["containerStatuses"] = [{"state": {"terminated": terminated}}]
        return self.phase("Succeeded" if code == 0 else "Failed")

    def failed_because(self, reason: str, message: str = "") -> PodBuilder:
        self.pod["status"].update(reason=reason, message=message)
        return self.phase("Failed")

    def terminating(self) -> PodBuilder:
        self.pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return self

    def requests(self, **amounts: str) -> PodBuilder:
        container = self.pod["spec"]["containers"][0]
        container["resources"] = {"requests": amounts}
        return self

    def foreign(self) -> PodBuilder:
        self.pod["metadata"]["labels"] = {"app": "other"}
        return self

    def build(self) -> dict[str, Any]:
        return self.pod


def a_pod(job: str, worker: int, *, workers: int = 2, attempt: int = 0) -> PodBuilder:
    return PodBuilder(
        {
            "metadata": {
                "name": f"{job}-{worker}",
                "namespace": "yushan-physics",
                "labels": {
                    "app.kubernetes.io/managed-by": "yushan",
                    "yushan.io/job": job,
                    "yushan.io/worker": str(worker),
                    "yushan.io/attempt": str(attempt),
                },
                "annotations": {"yushan.io/workers": str(workers)},
            },
            "spec": {"nodeName": f"node-{worker}", "containers": [{"name": "worker"}]},
            "status": {"phase": "Pending"},
        }
    )


def a_node(name: str, *, gpus: int = 8, ready: bool = True) -> dict[str, Any]:
    amounts = {"nvidia.com/gpu": str(gpus), "cpu": "96", "memory": "1440Gi"}
    return {
        "metadata": {"name": name, "labels": {"yushan.io/flavor": "h100"}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "capacity": amounts,
            "allocatable": amounts,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
