"""Least privilege: the scheduler runs against the embedded API server with exactly the Helm
chart's RBAC enforced, in both modes (cluster-wide, and ``rbac.tenantNamespaces``).

The chart is rendered with the real Helm SDK; its ClusterRoles, Roles and bindings for the
ServiceAccount become the embedded server's authorizer (:mod:`k8s.sim.rbac`). The scheduler
then elects itself leader, reconciles, runs a job to completion through its watch cache, reads
the job's log (as the API does) and cancels another: no request may be denied.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from k8s.client import ClientOptions, ClusterClient
from k8s.errors import ClusterError
from k8s.leader import LeaderElector
from k8s.sim import EmbeddedCluster
from k8s.sim.rbac import RbacAuthorizer
from k8s.watcher import ClusterWatcher
from scheduler.loop import SchedulerLoop
from scheduler.policy import Policy
from store import jobs, tenants, users
from store.common import new_job_id
from store.db import SessionFactory, session_factory, transaction
from store.jobstates import JobStatus
from store.tenants import TENANT, Limits
from tests.chart.rendering import NAMESPACE, RELEASE, render

NAMESPACED = {"rbac": {"tenantNamespaces": ["yushan-lab-a"]}}
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def _authorizer(values: dict[str, Any]) -> RbacAuthorizer:
    rendering = render(values)
    return RbacAuthorizer.from_objects(rendering.manifests, RELEASE, NAMESPACE)


@pytest.fixture
def sessions(engine: Engine) -> SessionFactory:
    factory = session_factory(engine)
    with transaction(factory) as session:
        tenants.create_flavor(session, "h100", H100, 4000, 90 * 2**30)
        tenants.create_cohort(session, "academic", None)
        tenants.create_tenant(session, "lab-a", "academic", "academic", 1.0, "yushan-lab-a")
        tenants.set_quota(session, TENANT, "lab-a", {"h100": {"gpu": Limits(16)}})
        users.create_user(session, "alice")
    return factory


def _submit(sessions: SessionFactory, seconds: float) -> str:
    request = jobs.JobRequest(
        tenant="lab-a",
        name="train",
        image="pytorch:latest",
        flavor="h100",
        gpus=1,
        workers=2,
        annotations={"sim.yushan.io/duration-seconds": str(seconds)},
    )
    with transaction(sessions) as session:
        return jobs.submit(session, request, user="alice", job_id=new_job_id()).job.id


def _status(sessions: SessionFactory, job_id: str) -> str:
    with sessions() as session:
        return jobs.get(session, job_id).status


@pytest.fixture(params=["cluster-wide", "tenant-namespaces"])
def enforced(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[EmbeddedCluster, RbacAuthorizer, Path, bool]]:
    namespaced = request.param == "tenant-namespaces"
    authorizer = _authorizer(NAMESPACED if namespaced else {})
    with EmbeddedCluster(time_scale=0.05, authorizer=authorizer) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "config")
        authorizer.enforcing = False  # set-up as a cluster admin: namespaces the operator owns
        with ClusterClient.from_kubeconfig(kubeconfig) as admin:
            admin.ensure_namespace(NAMESPACE)
            admin.ensure_namespace("yushan-lab-a", "lab-a")
        authorizer.enforcing = True
        yield cluster, authorizer, kubeconfig, namespaced


def test_the_scheduler_needs_nothing_the_chart_does_not_grant(
    enforced: tuple[EmbeddedCluster, RbacAuthorizer, Path, bool], sessions: SessionFactory
) -> None:
    _, authorizer, kubeconfig, _ = enforced
    # The chart's default: config.createTenantNamespaces false (namespaces are the operator's).
    options = ClientOptions(installation="a" * 32, create_namespaces=False)
    client = ClusterClient.from_kubeconfig(kubeconfig, options=options)
    elector = LeaderElector(client.api_client, NAMESPACE, "yushan-scheduler", "pod-0")
    assert elector.try_acquire_or_renew()
    watcher = ClusterWatcher(client).start()
    try:
        assert watcher.wait_synced(10)
        loop = SchedulerLoop(sessions, client, Policy.named("fair"), view=watcher)
        loop.recover()
        short = _submit(sessions, seconds=2)
        long = _submit(sessions, seconds=600)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _status(sessions, short) != "succeeded":
            loop.run_once()
            time.sleep(0.05)
        assert _status(sessions, short) == JobStatus.SUCCEEDED.value
        assert list(client.read_logs("yushan-lab-a", short, 0)) is not None
        with transaction(sessions) as session:
            jobs.cancel(session, jobs.get(session, long), by="alice")
        for _ in range(5):
            loop.run_once()
            time.sleep(0.05)
        assert elector.try_acquire_or_renew()
        # Reading a namespace is not granted without createTenantNamespaces; the client expects
        # that and lets the pod create tell whether the namespace exists.
        denied = [d for d in authorizer.denied if d[:3] != ("get", "", "namespaces")]
        assert denied == []
    finally:
        watcher.stop()
        client.close()


def test_listed_namespaces_really_limit_the_writes(
    enforced: tuple[EmbeddedCluster, RbacAuthorizer, Path, bool],
) -> None:
    """With tenant namespaces listed, a pod elsewhere is refused; cluster-wide, it is not."""
    _, authorizer, kubeconfig, namespaced = enforced
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "intruder", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    with ClusterClient.from_kubeconfig(kubeconfig) as client:
        if not namespaced:
            assert client.create_owned(pod)
            assert ("create", "", "pods", "default") not in authorizer.denied
            return
        with pytest.raises(ClusterError):
            client.create_owned(pod)
    assert ("create", "", "pods", "default") in authorizer.denied


def test_access_reviews_answer_with_the_enforced_rules(
    enforced: tuple[EmbeddedCluster, RbacAuthorizer, Path, bool],
) -> None:
    _, _, kubeconfig, namespaced = enforced
    with ClusterClient.from_kubeconfig(kubeconfig) as client:
        assert client.can_i("list", "pods")[0]
        assert client.can_i("watch", "nodes")[0]
        assert not client.can_i("create", "events", namespace="yushan-lab-a")[0]
        assert not client.can_i("create", "pods", subresource="binding")[0]
        assert client.can_i("create", "pods", namespace="yushan-lab-a")[0]
        assert client.can_i("create", "pods", namespace="default")[0] is not namespaced
