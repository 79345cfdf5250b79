"""Manifests built from workload specs: content rules and Kubernetes 1.32 schema validity."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from k8s import manifests as mf
from k8s.types import InvalidWorkloadError, WorkloadSpec
from tests.k8s.builders import a_workload

KUBERNETES_VERSION = "1.32"

SPECS: dict[str, WorkloadSpec] = {
    "single worker, one gpu": a_workload("jsingle001").build(),
    "cpu only": a_workload("jcpuonly01").gpus(0).build(),
    "gang of four with deadline": a_workload("jgang00004").workers(4).gpus(8).runtime(3600).build(),
    "command, args and env": a_workload("jcmd000001")
    .with_(command=("python", "-m", "train"), args=("--epochs", "3"), env={"WANDB_MODE": "off"})
    .build(),
    "reserved env is ignored": a_workload("jenv000001").workers(2).with_(env={"RANK": "7"}).build(),
    "requeued attempt": a_workload("jretry0001").attempt(3).lasting(10).build(),
    "checkpointing gang": a_workload("jckpt00001")
    .workers(2)
    .with_(checkpoint_interval_seconds=1800, env={"YUSHAN_CHECKPOINT_INTERVAL_SECONDS": "5"})
    .build(),
}


def all_manifests(spec: WorkloadSpec) -> list[dict[str, Any]]:
    return [
        mf.namespace_manifest(spec.namespace, spec.tenant),
        mf.access_review_manifest("create", "pods", namespace=spec.namespace),
        mf.access_review_manifest("get", "pods", subresource="log"),
        *mf.gang_manifests(spec),
    ]


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_every_manifest_is_valid_for_kubernetes_1_32_strict(spec: WorkloadSpec) -> None:
    for manifest in all_manifests(spec):
        version = kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        assert version == KUBERNETES_VERSION


def test_default_tenant_namespace() -> None:
    assert mf.tenant_namespace("physics") == "yushan-physics"
    assert a_workload(tenant="physics").build().namespace == mf.tenant_namespace("physics")


def test_strict_validation_rejects_an_unknown_field() -> None:
    pod = mf.pod_manifest(SPECS["single worker, one gpu"], 0)
    pod["spec"]["nodename"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_one_pod_per_worker_named_and_bound_deterministically(spec: WorkloadSpec) -> None:
    pods = [m for m in mf.gang_manifests(spec) if m["kind"] == "Pod"]
    assert [p["metadata"]["name"] for p in pods] == [
        f"{spec.job_id}-{i}" for i in range(spec.workers)
    ]
    assert [p["spec"]["nodeName"] for p in pods] == list(spec.placement)
    assert all(p["metadata"]["namespace"] == spec.namespace for p in pods)
    assert mf.gang_manifests(spec) == mf.gang_manifests(spec)


@pytest.mark.parametrize(
    ("workers", "services"), [(1, 0), (2, 1), (8, 1)], ids=["solo", "pair", "eight"]
)
def test_headless_service_only_for_multi_worker_gangs(workers: int, services: int) -> None:
    spec = a_workload().workers(workers).build()
    found = [m for m in mf.gang_manifests(spec) if m["kind"] == "Service"]
    assert len(found) == services
    for service in found:
        assert service["metadata"]["name"] == spec.job_id
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["publishNotReadyAddresses"] is True
        assert service["spec"]["selector"][mf.LABEL_JOB] == spec.job_id


def test_pod_labels_identify_job_tenant_worker_and_attempt() -> None:
    spec = SPECS["requeued attempt"]
    labels = mf.pod_manifest(spec, 0)["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/name": "yushan-job",
        "app.kubernetes.io/instance": spec.job_id,
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/managed-by": "yushan",
        "app.kubernetes.io/part-of": "yushan",
        "yushan.io/job": spec.job_id,
        "yushan.io/tenant": "physics",
        "yushan.io/worker": "0",
        "yushan.io/attempt": "3",
    }


def test_job_annotations_are_carried_to_pods() -> None:
    pod = mf.pod_manifest(SPECS["requeued attempt"], 0)
    annotations = pod["metadata"]["annotations"]
    assert annotations["sim.yushan.io/duration-seconds"] == "10"
    assert annotations[mf.ANNOTATION_WORKERS] == "1"
    assert annotations[mf.ANNOTATION_USER] == "alice@physics.example.edu"


def test_resources_have_requests_equal_to_limits_with_gpus() -> None:
    pod = mf.pod_manifest(SPECS["gang of four with deadline"], 2)
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {"cpu": "4000m", "memory": str(16 * 2**30), "nvidia.com/gpu": "8"}
    assert resources["requests"] == resources["limits"]


def test_cpu_only_workers_request_no_gpu_but_tolerate_the_taint() -> None:
    pod = mf.pod_manifest(SPECS["cpu only"], 0)
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"]["limits"]
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_pod_spec_policy_fields() -> None:
    spec = SPECS["gang of four with deadline"]
    pod_spec = mf.pod_manifest(spec, 1)["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["activeDeadlineSeconds"] == 3600
    assert pod_spec["nodeSelector"] == {"yushan.io/flavor": "h100"}
    assert pod_spec["hostname"] == f"{spec.job_id}-1"
    assert pod_spec["subdomain"] == spec.job_id
    assert "activeDeadlineSeconds" not in mf.pod_manifest(SPECS["cpu only"], 0)["spec"]


def test_restricted_security_context_by_default() -> None:
    pod = mf.pod_manifest(SPECS["single worker, one gpu"], 0)
    assert pod["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = pod["spec"]["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert (
        mf.namespace_manifest("yushan-x")["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"
        ]
        == "restricted"
    )


@pytest.mark.parametrize(
    ("worker", "expected"),
    [
        (0, {"RANK": "0", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "8", "PET_NODE_RANK": "0"}),
        (3, {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "8", "PET_NNODES": "4"}),
    ],
)
def test_torch_distributed_environment(worker: int, expected: dict[str, str]) -> None:
    spec = SPECS["gang of four with deadline"]
    env = env_of(mf.pod_manifest(spec, worker))
    assert env["MASTER_ADDR"] == f"{spec.job_id}-0.{spec.job_id}.yushan-physics.svc"
    assert env["MASTER_PORT"] == "29500"
    assert expected.items() <= env.items()


def test_single_worker_rendezvous_is_local() -> None:
    env = env_of(mf.pod_manifest(SPECS["single worker, one gpu"], 0))
    assert (env["MASTER_ADDR"], env["WORLD_SIZE"], env["RANK"]) == ("localhost", "1", "0")


def test_job_env_is_kept_but_cannot_override_distributed_variables() -> None:
    assert env_of(mf.pod_manifest(SPECS["command, args and env"], 0))["WANDB_MODE"] == "off"
    env = env_of(mf.pod_manifest(SPECS["reserved env is ignored"], 1))
    assert env["RANK"] == "1"
    names = [
        e["name"]
        for e in mf.pod_manifest(SPECS["reserved env is ignored"], 1)["spec"]["containers"][0][
            "env"
        ]
    ]
    assert len(names) == len(set(names))


def test_command_and_args_are_passed_through() -> None:
    container = mf.pod_manifest(SPECS["command, args and env"], 0)["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "train"]
    assert container["args"] == ["--epochs", "3"]
    assert "command" not in mf.pod_manifest(SPECS["cpu only"], 0)["spec"]["containers"][0]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"job_id": "Bad_Id"}, "DNS label"),
        ({"job_id": "j" * 60}, "DNS label"),
        ({"workers": 2}, "placement names 1 nodes for 2"),
        ({"workers": 0, "placement": ()}, "at least 1"),
        ({"gpus_per_worker": -1}, "negative"),
        ({"max_runtime_seconds": 0}, "positive"),
        ({"image": ""}, "image"),
        ({"namespace": "Yushan"}, "namespace"),
    ],
)
def test_invalid_specs_are_rejected(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidWorkloadError, match=problem):
        a_workload().with_(**changes).build()


def test_worker_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        mf.pod_manifest(SPECS["cpu only"], 1)


def test_checkpoint_interval_reaches_every_worker_and_wins_over_the_jobs_env() -> None:
    pods = mf.gang_manifests(SPECS["checkpointing gang"])[1:]

    assert [env_of(pod)[mf.CHECKPOINT_INTERVAL_ENV] for pod in pods] == ["1800", "1800"]


def test_no_checkpoint_interval_means_no_variable() -> None:
    spec = a_workload("jnockpt001").with_(env={"YUSHAN_CHECKPOINT_INTERVAL_SECONDS": "5"}).build()

    assert mf.CHECKPOINT_INTERVAL_ENV not in env_of(mf.pod_manifest(spec, 0))


def test_a_non_positive_checkpoint_interval_is_refused() -> None:
    with pytest.raises(InvalidWorkloadError, match="checkpoint_interval_seconds"):
        a_workload("jbadckpt01").with_(checkpoint_interval_seconds=0).build()
