"""The adapter's contract with a Kubernetes API server.

Runs against the embedded cluster by default and, unchanged, against a real cluster when
``YUSHAN_TEST_KUBECONFIG`` is set (see ``conftest.py``). Every test removes what it created.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from k8s import manifests as mf
from k8s.client import ClusterClient, StaleAttemptPresent
from k8s.doctor import run_doctor
from k8s.errors import OwnershipConflict
from k8s.types import WorkloadSpec
from k8s.watcher import ClusterWatcher
from tests.k8s.builders import unique_job_id
from tests.k8s.helpers import gpu_nodes, job, observe, phase_is, wait_for, wait_for_gang


@pytest.fixture
def cleanup(client: ClusterClient) -> Iterator[list[WorkloadSpec]]:
    specs: list[WorkloadSpec] = []
    yield specs
    for spec in specs:
        client.delete_job(spec.job_id, spec.namespace, grace_seconds=0)


def job_pods(client: ClusterClient, spec: WorkloadSpec) -> list[dict[str, Any]]:
    return [p for p in client.managed_pods() if mf.label(p, mf.LABEL_JOB) == spec.job_id]


def uids(client: ClusterClient, spec: WorkloadSpec) -> set[str]:
    return {str(p["metadata"]["uid"]) for p in job_pods(client, spec)}


def test_lists_gpu_nodes_with_capacity_readiness_and_flavor(client: ClusterClient) -> None:
    nodes = client.list_nodes()
    gpu = [n for n in nodes if n.allocatable.gpu > 0]
    assert gpu
    assert all(n.capacity.gpu >= n.allocatable.gpu for n in gpu)
    assert all(n.allocatable.cpu_milli > 0 and n.allocatable.memory_bytes > 0 for n in gpu)
    assert any(n.ready for n in gpu)


def test_dispatch_creates_bound_labelled_pods_and_a_headless_service(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = job(client, workers=2).build()
    cleanup.append(spec)
    client.dispatch(spec)
    pods = sorted(job_pods(client, spec), key=lambda p: str(p["metadata"]["name"]))
    assert [p["metadata"]["name"] for p in pods] == [f"{spec.job_id}-0", f"{spec.job_id}-1"]
    assert [p["spec"]["nodeName"] for p in pods] == list(spec.placement)
    assert [mf.label(p, mf.LABEL_WORKER) for p in pods] == ["0", "1"]
    services, _ = client.list_objects(
        f"/api/v1/namespaces/{spec.namespace}/services", label_selector=mf.job_selector(spec.job_id)
    )
    assert [s["metadata"]["name"] for s in services] == [spec.job_id]


def test_dispatch_twice_creates_nothing_new(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = job(client, workers=3).build()
    cleanup.append(spec)
    client.dispatch(spec)
    first = uids(client, spec)
    client.dispatch(spec)
    assert uids(client, spec) == first
    assert len(first) == 3


def test_gang_runs_then_succeeds(client: ClusterClient, cleanup: list[WorkloadSpec]) -> None:
    spec = job(client, workers=2, seconds=1).build()
    cleanup.append(spec)
    client.dispatch(spec)
    done = wait_for(lambda: phase_is(client, spec, "succeeded"), "the gang to succeed")
    assert [w.exit_code for w in done.pods] == [0, 0]
    assert done.workers == 2


def test_failed_worker_fails_the_gang_with_its_exit_code(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = job(client, seconds=0.5, exit_code=3).build()
    cleanup.append(spec)
    client.dispatch(spec)
    failed = wait_for(lambda: phase_is(client, spec, "failed"), "the gang to fail")
    assert failed.exit_code == 3
    assert failed.message == "worker 0 exited with code 3 (Error)"
    assert not failed.retryable


def test_running_gang_is_observed_running(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = job(client, workers=2, seconds=120).build()
    cleanup.append(spec)
    client.dispatch(spec)
    running = wait_for(lambda: phase_is(client, spec, "running"), "the gang to run")
    assert {w.phase for w in running.pods} == {"Running"}


def test_delete_job_removes_pods_and_service(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = job(client, workers=2, seconds=120).build()
    cleanup.append(spec)
    client.dispatch(spec)
    assert client.delete_job(spec.job_id, spec.namespace, grace_seconds=1) == 2
    wait_for(lambda: client.job_pods_gone(spec.job_id, spec.namespace), "pods to be gone")
    services, _ = client.list_objects(
        f"/api/v1/namespaces/{spec.namespace}/services", label_selector=mf.job_selector(spec.job_id)
    )
    assert services == []
    assert observe(client, spec) is None


def test_delete_job_can_keep_finished_pods_for_their_logs(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = job(client, seconds=1, exit_code=3).build()
    cleanup.append(spec)
    client.dispatch(spec)
    wait_for(lambda: phase_is(client, spec, "failed"), "the job to fail")
    assert client.delete_job(spec.job_id, spec.namespace, keep_finished=True) == 0
    assert len(job_pods(client, spec)) == 1
    assert client.delete_job(spec.job_id, spec.namespace, grace_seconds=0) == 1


def test_reconcile_adopts_creates_missing_and_deletes_orphans(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    tenant = unique_job_id("rc")  # a namespace of its own: reconcile must not touch others'
    kept = job(client, workers=2, seconds=120, tenant=tenant).build()
    orphan = job(client, seconds=120, tenant=tenant).build()
    never_dispatched = job(client, workers=2, seconds=120, tenant=tenant).build()
    cleanup += [kept, orphan, never_dispatched]
    client.dispatch(kept)
    client.dispatch(orphan)
    desired = {s.job_id: s for s in (kept, never_dispatched)}

    report = client.reconcile(desired, namespaces={kept.namespace})

    assert report.adopted == (f"{kept.job_id}-0", f"{kept.job_id}-1")
    assert report.created == tuple(
        sorted(
            [
                never_dispatched.job_id,
                f"{never_dispatched.job_id}-0",
                f"{never_dispatched.job_id}-1",
            ]
        )
    )
    assert report.deleted == (f"{orphan.job_id}-0",)
    assert not report.errors
    assert len(job_pods(client, never_dispatched)) == 2
    again = client.reconcile(desired, namespaces={kept.namespace})
    assert (again.created, again.deleted) == ((), ())


def test_new_attempt_waits_for_the_old_attempt_pods_to_go(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    builder = job(client, seconds=120)
    first = builder.build()
    cleanup.append(first)
    client.dispatch(first)
    retry = builder.attempt(1).build()
    with pytest.raises(StaleAttemptPresent):
        client.dispatch(retry)

    def redispatched() -> bool:
        try:
            client.dispatch(retry)
        except StaleAttemptPresent:
            return False
        return True

    wait_for(redispatched, "the stale pod to be replaced")
    pods = job_pods(client, retry)
    assert [mf.label(p, mf.LABEL_ATTEMPT) for p in pods] == ["1"]


def test_a_pod_of_another_owner_is_never_adopted(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = job(client, seconds=120).build()
    cleanup.append(spec)
    client.ensure_namespace(spec.namespace, spec.tenant)
    foreign = mf.pod_manifest(spec, 0)
    foreign["metadata"]["labels"] = {"app": "someone-else"}
    client.transport.request("POST", f"/api/v1/namespaces/{spec.namespace}/pods", body=foreign)
    try:
        with pytest.raises(OwnershipConflict):
            client.dispatch(spec)
    finally:
        client.transport.request(
            "DELETE", f"/api/v1/namespaces/{spec.namespace}/pods/{spec.job_id}-0"
        )


def test_foreign_pods_count_against_their_node(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = job(client, seconds=120).with_(gpus_per_worker=0).build()
    cleanup.append(spec)
    client.ensure_namespace(spec.namespace, spec.tenant)
    node = spec.placement[0]
    before = {n.name: n.foreign for n in client.list_nodes()}[node]
    foreign = mf.pod_manifest(spec, 0)
    foreign["metadata"]["name"] = f"{spec.job_id}-foreign"
    foreign["metadata"]["labels"] = {"app": "someone-else"}
    path = f"/api/v1/namespaces/{spec.namespace}/pods"
    client.transport.request("POST", path, body=foreign)
    try:
        after = {n.name: n.foreign for n in client.list_nodes()}[node]
        assert after.cpu_milli - before.cpu_milli == spec.cpu_milli
        assert after.memory_bytes - before.memory_bytes == spec.memory_bytes
    finally:
        client.transport.request("DELETE", f"{path}/{spec.job_id}-foreign")


def test_read_logs_of_a_finished_worker(client: ClusterClient, cleanup: list[WorkloadSpec]) -> None:
    spec = (
        job(client, seconds=0.5)
        .with_(command=("sh", "-c", "echo hello from yushan; sleep 0.5"))
        .build()
    )
    cleanup.append(spec)
    client.dispatch(spec)
    wait_for(lambda: phase_is(client, spec, "succeeded"), "the job to finish")
    lines = list(client.read_logs(spec.namespace, spec.job_id, 0))
    assert lines
    assert list(client.read_logs(spec.namespace, spec.job_id, 0, tail_lines=1)) == lines[-1:]


def test_followed_logs_end_when_the_worker_ends(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = (
        job(client, seconds=1)
        .with_(command=("sh", "-c", "echo started; sleep 1; echo finished"))
        .build()
    )
    cleanup.append(spec)
    client.dispatch(spec)
    wait_for(lambda: phase_is(client, spec, "running", "succeeded"), "the job to start")
    lines = list(client.read_logs(spec.namespace, spec.job_id, 0, follow=True))
    assert phase_is(client, spec, "succeeded"), "following ended before the worker did"
    assert len(lines) >= 2


def test_watcher_sees_dispatched_gangs_and_nodes(
    client: ClusterClient, cleanup: list[WorkloadSpec]
) -> None:
    spec = job(client, workers=2, seconds=1).build()
    cleanup.append(spec)
    with ClusterWatcher(client, watch_timeout_seconds=5) as watcher:
        assert watcher.wait_synced(10)
        assert {n.name for n in watcher.nodes()} >= set(gpu_nodes(client, 1))
        watcher.changed.clear()
        client.dispatch(spec)
        assert watcher.changed.wait(10)
        done = wait_for_gang(watcher.gangs, spec.job_id, "succeeded")
        assert len(done.pods) == 2


def test_doctor_passes_on_a_usable_cluster(client: ClusterClient) -> None:
    report = run_doctor(client)
    assert report.ok, report.failures()
    names = [c.name for c in report.checks]
    assert names[0] == "connection"
    assert "rbac: create pods in default" in names
    assert names[-1] == "gpu nodes"


def test_watcher_stops_promptly_even_mid_watch(client: ClusterClient) -> None:
    watcher = ClusterWatcher(client, watch_timeout_seconds=300).start()
    assert watcher.wait_synced(10)
    nodes, _ = watcher.snapshot()
    assert {n.name for n in nodes} == {n.name for n in client.list_nodes()}
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 2.0
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("yushan-watch"))
