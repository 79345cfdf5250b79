"""What admin changes mean to the loop, end to end on the embedded cluster: a tenant deleted
with ``force`` loses its pods (orphans) on the next iteration; a flavor whose nodes are gone
leaves its jobs waiting with ``NoNodesForFlavor``; the inventory the loop records is what the
submit-time check refuses against."""

from __future__ import annotations

import pytest

from store import cluster, jobs, lifecycle, tenants
from store.common import new_job_id
from store.db import transaction
from store.errors import InvalidRequest
from store.tenants import TENANT, Limits
from tests.loop.conftest import Platform, run_until


def test_force_deleted_tenant_loses_its_pods_on_the_next_iteration(platform: Platform) -> None:
    job_id = platform.submit(gpus=8, workers=2, seconds=3600)
    loop = platform.loop()
    run_until(loop, lambda: platform.job(job_id).status == "running")
    assert len(platform.pods(job_id)) == 2
    with transaction(platform.sessions) as session:
        cancelled = lifecycle.delete_tenant(session, "lab-a", force=True, by="admin")
    assert [job.id for job in cancelled] == [job_id]
    report = loop.run_once()
    assert job_id in report.deleted
    run_until(loop, lambda: not platform.pods(job_id))


def test_nodes_of_orphaned_pods_take_no_new_job_until_the_pods_are_gone(
    platform: Platform,
) -> None:
    job_id = platform.submit(gpus=8, seconds=3600)
    loop = platform.loop()
    run_until(loop, lambda: platform.job(job_id).status == "running")
    (node,) = platform.job(job_id).placement or []
    with transaction(platform.sessions) as session:
        lifecycle.delete_tenant(session, "lab-a", force=True, by="admin")
    plan_nodes: list[bool] = []
    original = loop._node_states

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        states, records = original(*args, **kwargs)
        plan_nodes.extend(s.schedulable for s in states if s.name == node)
        return states, records

    loop._node_states = recording  # type: ignore[method-assign]
    loop.run_once()
    assert plan_nodes == [False]


def test_jobs_of_a_flavor_without_nodes_wait_with_no_nodes_for_flavor(
    platform: Platform,
) -> None:
    loop = platform.loop()
    for index in range(4):
        platform.cluster.remove_node(f"v100-{index}")
    job_id = platform.submit(gpus=1, flavor="v100", seconds=60)
    run_until(loop, lambda: platform.job(job_id).reason == "NoNodesForFlavor")
    assert "flavor v100" in platform.job(job_id).message


def test_the_recorded_inventory_refuses_a_worker_no_node_can_hold(platform: Platform) -> None:
    platform.loop().run_once()
    with transaction(platform.sessions) as session:
        assert len(cluster.list_nodes(session)) == 8
    request = jobs.JobRequest(tenant="lab-a", name="big", image="i", flavor="v100", gpus=8)
    with pytest.raises(InvalidRequest) as refused, transaction(platform.sessions) as session:
        jobs.submit(session, request, user="alice", job_id=new_job_id())
    message = refused.value.message
    assert refused.value.field == "body.memory"
    assert "720Gi" in message
    assert "v100-" in message
    assert "384Gi" in message
    # With memory that fits, the same job is taken.
    with transaction(platform.sessions) as session:
        tenants.set_quota(session, TENANT, "lab-a", {"v100": {"gpu": Limits(8)}})
        fitting = jobs.JobRequest(
            tenant="lab-a", name="ok", image="i", flavor="v100", gpus=8, memory_bytes=300 * 2**30
        )
        assert jobs.submit(session, fitting, user="alice", job_id=new_job_id()).job.gpus == 8
