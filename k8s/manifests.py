"""Pure functions from a :class:`~k8s.types.WorkloadSpec` to Kubernetes manifests (plain dicts).

Manifests are JSON-ready dicts in the API's own camelCase shape rather than ``V1Pod`` models:
they are what the API server receives byte for byte, they validate directly against the
Kubernetes JSON schemas in tests, and building them costs no model validation on the dispatch
hot path.

Naming is deterministic so that dispatch is idempotent: worker ``i`` of job ``j`` is always the
pod ``j-i`` and the gang's headless Service is ``j``. The pod is bound by ``spec.nodeName`` to the
node the scheduler chose; the default scheduler never sees it, which is what makes a gang land
whole on the placement Yushan reserved. Labels carry the job, tenant, worker index and attempt
so a restarted scheduler can adopt its pods from the cluster alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from k8s.types import WorkloadSpec

Manifest = dict[str, Any]

GPU_RESOURCE = "nvidia.com/gpu"
MASTER_PORT = 29500
CONTAINER_NAME = "worker"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_JOB = "yushan.io/job"
LABEL_TENANT = "yushan.io/tenant"
LABEL_WORKER = "yushan.io/worker"
LABEL_ATTEMPT = "yushan.io/attempt"
LABEL_INSTALLATION = "yushan.io/installation"
"""The identity of the installation that created the object (see :mod:`store.installation`)."""
ANNOTATION_WORKERS = "yushan.io/workers"
ANNOTATION_USER = "yushan.io/user"
ANNOTATION_JOB_NAME = "yushan.io/job-name"

MANAGED_BY = "yushan"
MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"

DISTRIBUTED_ENV = frozenset(
    {"MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_WORLD_SIZE", "PET_NNODES"}
    | {"PET_NODE_RANK", "PET_NPROC_PER_NODE", "PET_MASTER_ADDR", "PET_MASTER_PORT"}
)
"""torch.distributed rendezvous variables (see :func:`distributed_env`)."""
CHECKPOINT_INTERVAL_ENV = "YUSHAN_CHECKPOINT_INTERVAL_SECONDS"
"""Set when the job declared ``checkpoint_interval_seconds``: how often it should checkpoint."""
RESERVED_ENV = DISTRIBUTED_ENV | {CHECKPOINT_INTERVAL_ENV}
"""Variables Yushan sets itself; a job's own ``env`` cannot override them."""


def restricted_pod_security() -> Manifest:
    """Pod-level half of the ``restricted`` Pod Security Standard."""
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def restricted_container_security() -> Manifest:
    """Container-level half of the ``restricted`` Pod Security Standard."""
    return restricted_pod_security() | {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_name(job_id: str, worker: int) -> str:
    return f"{job_id}-{worker}"


def service_name(job_id: str) -> str:
    return job_id


def job_selector(job_id: str) -> str:
    """Label selector for every pod (of any attempt) Yushan created for ``job_id``."""
    return f"{MANAGED_SELECTOR},{LABEL_JOB}={job_id}"


def master_address(spec: WorkloadSpec) -> str:
    """Stable DNS name of worker 0: ``<pod hostname>.<headless service>.<namespace>.svc``."""
    if spec.workers == 1:
        return "localhost"
    return f"{pod_name(spec.job_id, 0)}.{service_name(spec.job_id)}.{spec.namespace}.svc"


def job_labels(spec: WorkloadSpec) -> dict[str, str]:
    return {
        LABEL_NAME: "yushan-job",
        LABEL_INSTANCE: spec.job_id,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PART_OF: "yushan",
        LABEL_JOB: spec.job_id,
        LABEL_TENANT: spec.tenant,
    }


def worker_labels(spec: WorkloadSpec, worker: int) -> dict[str, str]:
    return job_labels(spec) | {
        LABEL_COMPONENT: "worker",
        LABEL_WORKER: str(worker),
        LABEL_ATTEMPT: str(spec.attempt),
    }


def tenant_namespace(tenant: str) -> str:
    """The default namespace of a tenant's jobs."""
    return f"yushan-{tenant}"


def access_review_manifest(
    verb: str, resource: str, *, group: str = "", subresource: str = "", namespace: str = ""
) -> Manifest:
    """A SelfSubjectAccessReview asking whether our credentials may ``verb`` the resource."""
    attributes = {"verb": verb, "resource": resource, "group": group}
    if subresource:
        attributes["subresource"] = subresource
    if namespace:
        attributes["namespace"] = namespace
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


def namespace_manifest(name: str, tenant: str | None = None) -> Manifest:
    """A tenant namespace that enforces the ``restricted`` Pod Security Standard."""
    labels = {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PART_OF: "yushan",
        "pod-security.kubernetes.io/enforce": "restricted",
    }
    if tenant is not None:
        labels[LABEL_TENANT] = tenant
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def service_manifest(spec: WorkloadSpec) -> Manifest:
    """The headless Service that gives every worker of a multi-worker gang a stable DNS name.

    ``publishNotReadyAddresses`` matters: workers rendezvous before any of them is Ready.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(spec.job_id),
            "namespace": spec.namespace,
            "labels": job_labels(spec) | {LABEL_COMPONENT: "rendezvous"},
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {LABEL_JOB: spec.job_id, LABEL_MANAGED_BY: MANAGED_BY},
            "ports": [
                {
                    "name": "rendezvous",
                    "port": MASTER_PORT,
                    "targetPort": MASTER_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }


def distributed_env(spec: WorkloadSpec, worker: int) -> dict[str, str]:
    """torch.distributed rendezvous variables, one pod per node in torchrun's terms.

    ``WORLD_SIZE``/``RANK`` count pods (as Kubeflow's PyTorchJob does); ``LOCAL_WORLD_SIZE``
    and the ``PET_*`` variables let ``torchrun`` start one process per GPU inside each pod.
    """
    per_pod = str(max(spec.gpus_per_worker, 1))
    master = master_address(spec)
    return {
        "MASTER_ADDR": master,
        "MASTER_PORT": str(MASTER_PORT),
        "WORLD_SIZE": str(spec.workers),
        "RANK": str(worker),
        "LOCAL_WORLD_SIZE": per_pod,
        "PET_NNODES": str(spec.workers),
        "PET_NODE_RANK": str(worker),
        "PET_NPROC_PER_NODE": per_pod,
        "PET_MASTER_ADDR": master,
        "PET_MASTER_PORT": str(MASTER_PORT),
    }


def _env_list(spec: WorkloadSpec, worker: int) -> list[dict[str, str]]:
    own = {k: v for k, v in sorted(spec.env.items()) if k not in RESERVED_ENV}
    merged = own | distributed_env(spec, worker)
    if spec.checkpoint_interval_seconds is not None:
        merged[CHECKPOINT_INTERVAL_ENV] = str(spec.checkpoint_interval_seconds)
    return [{"name": name, "value": value} for name, value in merged.items()]


def _resources(spec: WorkloadSpec) -> Manifest:
    amounts: dict[str, str] = {
        "cpu": f"{spec.cpu_milli}m",
        "memory": str(spec.memory_bytes),
    }
    if spec.gpus_per_worker:
        amounts[GPU_RESOURCE] = str(spec.gpus_per_worker)
    return {"limits": dict(amounts), "requests": dict(amounts)}


def _container(spec: WorkloadSpec, worker: int) -> Manifest:
    container: Manifest = {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "env": _env_list(spec, worker),
        "resources": _resources(spec),
        "securityContext": restricted_container_security(),
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    if spec.workers > 1:
        container["ports"] = [{"name": "rendezvous", "containerPort": MASTER_PORT}]
    return container


def _annotations(spec: WorkloadSpec) -> dict[str, str]:
    return dict(spec.annotations) | {
        ANNOTATION_WORKERS: str(spec.workers),
        ANNOTATION_USER: spec.user,
        ANNOTATION_JOB_NAME: spec.job_name,
    }


def pod_manifest(spec: WorkloadSpec, worker: int) -> Manifest:
    """Worker ``worker`` of the gang, bound to ``spec.placement[worker]``."""
    if not 0 <= worker < spec.workers:
        raise IndexError(f"worker {worker} out of range for {spec.workers} workers")
    name = pod_name(spec.job_id, worker)
    pod_spec: Manifest = {
        "nodeName": spec.placement[worker],
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [_container(spec, worker)],
    }
    if spec.node_labels:
        pod_spec["nodeSelector"] = dict(spec.node_labels)
    if spec.max_runtime_seconds is not None:
        pod_spec["activeDeadlineSeconds"] = spec.max_runtime_seconds
    if spec.workers > 1:
        pod_spec["hostname"] = name
        pod_spec["subdomain"] = service_name(spec.job_id)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": spec.namespace,
            "labels": worker_labels(spec, worker),
            "annotations": _annotations(spec),
        },
        "spec": pod_spec,
    }


def gang_manifests(spec: WorkloadSpec) -> list[Manifest]:
    """Everything one job needs, in creation order: the Service (if any), then the pods."""
    manifests = [service_manifest(spec)] if spec.workers > 1 else []
    return manifests + [pod_manifest(spec, worker) for worker in range(spec.workers)]


def label(obj: Mapping[str, Any], key: str) -> str | None:
    """A label of a manifest or API object, ``None`` when absent."""
    labels = obj.get("metadata", {}).get("labels") or {}
    value = labels.get(key)
    return str(value) if value is not None else None
