"""Installation identity: a scheduler pointed at the wrong database deletes nothing.

Installation A runs a job; a scheduler of installation B (an empty database, as after a restart
that lost its settings and fell back to a fresh SQLite file) refuses to start, and even when
driven anyway neither adopts nor deletes A's pods.
"""

from __future__ import annotations

import pytest

from k8s.client import ClientOptions, ClusterClient
from k8s.manifests import LABEL_INSTALLATION
from scheduler.loop import InstallationMismatch, SchedulerLoop
from scheduler.policy import Policy
from store import installation
from store.db import create_db_engine, session_factory
from store.jobstates import JobStatus
from store.migrate import upgrade
from tests.loop.conftest import Platform, run_until


def _client(platform: Platform, identity: str) -> ClusterClient:
    return ClusterClient.from_kubeconfig(
        str(platform.kubeconfig), options=ClientOptions(installation=identity)
    )


def _running_job_of_a(platform: Platform) -> tuple[SchedulerLoop, str]:
    identity = installation.identity(platform.sessions)
    loop = platform.loop(client=_client(platform, identity))
    job_id = platform.submit(gpus=1, workers=2, seconds=600)
    run_until(loop, lambda: platform.job(job_id).status == JobStatus.RUNNING.value)
    return loop, job_id


def _live_pods(platform: Platform, job_id: str) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in platform.pods(job_id)
        if not p["metadata"].get("deletionTimestamp")
    ]


def test_pods_carry_the_identity_created_with_the_database(platform: Platform) -> None:
    _, job_id = _running_job_of_a(platform)
    identity = installation.identity(platform.sessions)
    assert len(identity) == 32
    labels = [p["metadata"]["labels"] for p in platform.pods(job_id)]
    assert labels
    assert all(label[LABEL_INSTALLATION] == identity for label in labels)
    with _client(platform, identity) as client:  # the namespace it created records it too
        namespace = client.list_objects("/api/v1/namespaces")[0]
    (created,) = [n for n in namespace if n["metadata"]["name"] == "yushan-lab-a"]
    assert created["metadata"]["labels"][LABEL_INSTALLATION] == identity


def test_a_scheduler_on_an_empty_database_refuses_and_deletes_nothing(
    platform: Platform, sqlite_url: str
) -> None:
    _, job_id = _running_job_of_a(platform)
    before = _live_pods(platform, job_id)
    assert len(before) == 2

    upgrade(sqlite_url)  # the wrong database: fresh, with an identity of its own
    wrong = session_factory(create_db_engine(sqlite_url))
    other = installation.identity(wrong)
    assert other != installation.identity(platform.sessions)
    stray = SchedulerLoop(wrong, _client(platform, other), Policy.named("fair"))
    with pytest.raises(InstallationMismatch, match="another Yushan installation"):
        stray.recover()
    # Even driven anyway, it adopts and deletes nothing of A's.
    report = stray.cluster.reconcile({}, keep_finished=True)
    assert report.deleted == ()
    assert report.adopted == ()
    for _ in range(3):
        stray.run_once()
    assert _live_pods(platform, job_id) == before
    assert stray.view.snapshot()[1] == {}  # A's gangs are not B's


def test_another_installation_beside_our_jobs_is_only_reported(platform: Platform) -> None:
    loop, job_id = _running_job_of_a(platform)
    platform.submit(gpus=1, seconds=600)  # B's database is not empty
    neighbour = platform.loop(client=_client(platform, "0" * 32))
    neighbour.check_installation()  # no error: two installations may share a cluster
    loop.recover()
    assert len(_live_pods(platform, job_id)) == 2
