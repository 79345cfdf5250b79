"""The loop's glue between the pure cycle and the store, on a controlled clock.

Each test pins one piece of glue whose absence the cycle's own tests cannot see: usage decay
folded into the stored usage, preemptions persisted as requeues with backoff, and the eviction
history the next cycle reads. The loop runs against the embedded cluster over real HTTP and a
real database (SQLite and PostgreSQL); only its clock is ours.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from k8s.client import ClusterClient
from k8s.sim.cluster import EmbeddedCluster
from quotas.decay import decay
from scheduler.loop import LoopSettings, SchedulerLoop
from scheduler.policy import Policy
from scheduler.snapshots import build_snapshot, load_usage
from store import heartbeat, jobs, tenants, users
from store.common import as_utc, new_job_id
from store.db import SessionFactory, session_factory, transaction
from store.models import Job
from store.tenants import TENANT, Limits
from tests.loop.conftest import run_until

H100_LABELS = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


class Clock:
    """The loop's clock: it moves only when a test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    sessions: SessionFactory
    cluster: EmbeddedCluster
    kubeconfig: Path
    clock: Clock

    def loop(self, policy: Policy) -> SchedulerLoop:
        client = ClusterClient.from_kubeconfig(str(self.kubeconfig))
        return SchedulerLoop(self.sessions, client, policy, clock=self.clock)

    def submit(
        self, tenant: str, user: str, *, gpus: int, workers: int = 1, checkpoint: int | None = None
    ) -> str:
        request = jobs.JobRequest(
            tenant=tenant,
            name="train",
            image="pytorch:latest",
            flavor="h100",
            gpus=gpus,
            workers=workers,
            annotations={"sim.yushan.io/duration-seconds": "100000"},
            checkpoint_interval_seconds=checkpoint,
        )
        with transaction(self.sessions) as session:
            return jobs.submit(session, request, user=user, job_id=new_job_id()).job.id

    def job(self, job_id: str) -> Job:
        with self.sessions() as session:
            return jobs.get(session, job_id)

    def status(self, job_id: str) -> str:
        return self.job(job_id).status


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    """Two tenants of one cohort with 16 H100 GPUs of nominal quota each; the embedded cluster
    has 32 (4 nodes of 8)."""
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        tenants.create_flavor(session, "h100", H100_LABELS, 4000, 90 * 2**30)
        tenants.create_cohort(session, "academic", None)
        for name in ("lab-a", "lab-b"):
            tenants.create_tenant(session, name, "academic", "academic", 1.0, f"yushan-{name}")
            tenants.set_quota(session, TENANT, name, {"h100": {"gpu": Limits(16)}})
        users.create_user(session, "alice")
        users.create_user(session, "bob")
    with EmbeddedCluster(time_scale=0.05) as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(f"/tmp/yushan-glue-kc-{id(cluster)}"))
        yield World(sessions, cluster, kubeconfig, Clock(time.time()))
        kubeconfig.unlink(missing_ok=True)


# -- the job spec reaches the pods ----------------------------------------------------------


def test_the_checkpoint_interval_reaches_every_pod_of_the_gang(world: World) -> None:
    loop = world.loop(Policy.named("fair"))
    checkpointing = world.submit("lab-a", "alice", gpus=4, workers=2, checkpoint=1800)
    plain = world.submit("lab-a", "alice", gpus=1)
    run_until(loop, lambda: world.status(checkpointing) == world.status(plain) == "running")

    def env(job_id: str) -> list[dict[str, str]]:
        pods = [
            p for p in world.cluster.pods() if p["metadata"]["labels"]["yushan.io/job"] == job_id
        ]
        assert pods
        return [
            {e["name"]: e.get("value", "") for e in p["spec"]["containers"][0]["env"]} for p in pods
        ]

    assert [e.get("YUSHAN_CHECKPOINT_INTERVAL_SECONDS") for e in env(checkpointing)] == [
        "1800",
        "1800",
    ]
    assert all("YUSHAN_CHECKPOINT_INTERVAL_SECONDS" not in e for e in env(plain))


# -- usage decay ----------------------------------------------------------------------------


def test_stored_usage_is_the_decay_of_the_gpus_held_over_the_loops_clock(world: World) -> None:
    policy = replace(Policy.named("fair"), half_life_seconds=3600.0)
    loop = world.loop(policy)
    job_id = world.submit("lab-a", "alice", gpus=4, workers=2)
    # The clock stands still until the job runs: no time passes, no usage accrues.
    run_until(loop, lambda: world.status(job_id) == "running")
    with world.sessions() as session:
        assert load_usage(session).tenants.get("lab-a", 0.0) == 0.0

    world.clock.now += 600
    loop.run_once()
    after_600 = decay(0.0, 8.0, 600, 3600.0)
    world.clock.now += 1200
    loop.run_once()
    after_1800 = decay(after_600, 8.0, 1200, 3600.0)

    with world.sessions() as session:
        usage = load_usage(session)
    assert after_1800 > 2.0  # far from zero: a no-op decay cannot pass by accident
    assert usage.tenants["lab-a"] == pytest.approx(after_1800, rel=1e-9)
    assert usage.users[("lab-a", "alice")] == pytest.approx(after_1800, rel=1e-9)
    assert usage.tenants.get("lab-b", 0.0) == 0.0  # holds nothing, accrues nothing


# -- preemption, persisted ------------------------------------------------------------------


def test_a_preemption_is_persisted_as_an_eviction_requeued_with_backoff(world: World) -> None:
    policy = replace(Policy.named("fair"), min_runtime_seconds=0, backoff_base_seconds=90.0)
    loop = world.loop(policy)
    borrowers = [world.submit("lab-b", "bob", gpus=8) for _ in range(4)]
    run_until(loop, lambda: all(world.status(j) == "running" for j in borrowers))

    # lab-b borrows lab-a's 16 GPUs; lab-a, within its nominal quota, reclaims 8 of them.
    world.clock.now += 600
    evicted_at = world.clock.now
    claimant = world.submit("lab-a", "alice", gpus=8)
    loop.run_once()

    # Read from the store, not from the iteration's report: what was persisted is what counts.
    evicted = [j for j in borrowers if world.status(j) != "running"]
    assert len(evicted) == 1, [(j, world.status(j)) for j in borrowers]
    victim_id = evicted[0]
    victim = world.job(victim_id)
    assert (victim.status, victim.reason, victim.attempts) == ("queued", "Backoff", 1)
    assert victim.placement is None
    assert victim.not_before is not None
    assert as_utc(victim.not_before).timestamp() == pytest.approx(evicted_at + 90.0, abs=1e-3)
    assert victim.evicted_at == [pytest.approx(evicted_at, abs=1e-3)]
    with world.sessions() as session:
        transitions = [(e.from_status, e.to_status) for e in jobs.events(session, victim_id)]
    assert transitions[-2:] == [("running", "preempted"), ("preempted", "queued")]

    # The next cycle sees the eviction (for the per-day cap) and the claimant gets the GPUs
    # once the victim's pods are gone.
    with world.sessions() as session:
        snapshot = build_snapshot(session, (), world.clock.now)
    [seen] = [j for j in snapshot.queued if j.id == victim_id]
    assert list(seen.evicted_at) == [pytest.approx(evicted_at, abs=1e-3)]
    run_until(loop, lambda: world.status(claimant) in ("admitted", "running"))
    assert world.status(victim_id) == "queued"


# -- the heartbeat doctor reads ---------------------------------------------------------------


def test_each_committed_cycle_writes_the_heartbeat_with_the_loops_identity_and_mode(
    world: World,
) -> None:
    client = ClusterClient.from_kubeconfig(str(world.kubeconfig))
    settings = LoopSettings(identity="sched-0", interval_seconds=7.0, create_namespaces=False)
    loop = SchedulerLoop(
        world.sessions, client, Policy.named("fair"), clock=world.clock, settings=settings
    )
    with world.sessions() as session:
        assert heartbeat.last(session) is None
    loop.run_once()
    with world.sessions() as session:
        beat = heartbeat.last(session)
    assert beat is not None
    assert (beat.holder, beat.interval_seconds, beat.create_namespaces) == ("sched-0", 7.0, False)
    assert beat.beat_at.timestamp() == pytest.approx(world.clock.now)
    world.clock.now += 30
    loop.run_once()
    with world.sessions() as session:
        later = heartbeat.last(session)
    assert later is not None
    assert later.beat_at.timestamp() == pytest.approx(world.clock.now)
