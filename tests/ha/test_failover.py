"""High availability: two scheduler processes on one PostgreSQL and the embedded cluster.

Only the Lease holder schedules. The leader is killed with SIGKILL mid-run; the other process
must take over within 15 s, and in the end every job has succeeded with exactly one pod per
worker: no job lost, no duplicate pod, no orphan.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from k8s.sim.cluster import EmbeddedCluster
from store import jobs, tenants, users
from store.common import new_job_id
from store.db import create_db_engine, session_factory, transaction
from store.models import Job
from store.tenants import TENANT, Limits
from tests.conftest import truncate_all
from tests.ports import free_port

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.xdist_group("ha")


def _leader_gauge(port: int) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except httpx.HTTPError:
        return None
    match = re.search(r"^yushan_scheduler_leader (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def _assert_promtool_accepts(port: int) -> None:
    """The scheduler process's own /metrics passes ``promtool check metrics``."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (Debian package prometheus; .ci/run installs it)"
    payload = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "yushan_scheduling_cycle_duration_seconds" in payload
    check = subprocess.run(
        [promtool, "check", "metrics"], input=payload, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"condition not reached within {timeout}s")


@pytest.fixture
def postgres_engine(migrated_urls: dict[str, str]) -> Iterator[Engine]:
    engine = create_db_engine(migrated_urls["postgres"])
    truncate_all(engine)
    yield engine
    engine.dispose()


def _scheduler(url: str, kubeconfig: Path, name: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("YUSHAN_")},
        "YUSHAN_DATABASE_URL": url,
        "YUSHAN_POD_NAME": name,
        "YUSHAN_METRICS_HOST": "127.0.0.1",
        "YUSHAN_METRICS_PORT": str(port),
        "YUSHAN_CYCLE_INTERVAL_SECONDS": "0.2",
        "YUSHAN_LEADER_ELECTION_LEASE_DURATION_SECONDS": "6",
        "YUSHAN_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": "4",
        "YUSHAN_LEADER_ELECTION_RETRY_PERIOD_SECONDS": "1",
        "YUSHAN_LOG_FORMAT": "text",
    }
    return subprocess.Popen(
        [str(BIN / "yushan"), "scheduler", "--kubeconfig", str(kubeconfig)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_leader_killed_mid_run_fails_over_without_losing_or_duplicating(
    postgres_engine: Engine, migrated_urls: dict[str, str], tmp_path: Path
) -> None:
    sessions = session_factory(postgres_engine)
    with transaction(sessions) as session:
        tenants.create_flavor(
            session, "h100", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, 4000, 2**30
        )
        tenants.create_tenant(session, "lab-a", "academic", None, 1.0, "yushan-lab-a")
        tenants.set_quota(session, TENANT, "lab-a", {"h100": {"gpu": Limits(32)}})
        users.create_user(session, "alice")

    def submit(count: int) -> list[str]:
        request = jobs.JobRequest(
            tenant="lab-a",
            name="ha",
            image="pytorch",
            flavor="h100",
            gpus=4,
            workers=2,
            annotations={"sim.yushan.io/duration-seconds": "100"},
        )
        with transaction(sessions) as session:
            return [
                jobs.submit(session, request, user="alice", job_id=new_job_id()).job.id
                for _ in range(count)
            ]

    def statuses() -> dict[str, int]:
        with sessions() as session:
            rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            return dict(rows)

    with EmbeddedCluster(time_scale=0.05) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        ports = {"sched-a": free_port(), "sched-b": free_port()}
        processes = {
            name: _scheduler(migrated_urls["postgres"], kubeconfig, name, port)
            for name, port in ports.items()
        }
        try:
            job_ids = submit(8)
            wait_for(lambda: statuses().get("running", 0) >= 2, 60)
            leaders = [n for n, p in ports.items() if _leader_gauge(p) == 1.0]
            assert len(leaders) == 1, leaders
            leader = leaders[0]
            follower = next(n for n in ports if n != leader)
            processes[leader].send_signal(signal.SIGKILL)
            processes[leader].wait(timeout=10)
            takeover = wait_for(lambda: _leader_gauge(ports[follower]) == 1.0, 15)
            _assert_promtool_accepts(ports[follower])
            job_ids += submit(4)
            wait_for(lambda: statuses() == {"succeeded": len(job_ids)}, 120)
        finally:
            for process in processes.values():
                process.kill()
                process.wait(timeout=10)
        pods = cluster.pods()
    by_job: dict[str, list[str]] = {}
    for pod in pods:
        by_job.setdefault(pod["metadata"]["labels"]["yushan.io/job"], []).append(
            pod["metadata"]["name"]
        )
    assert takeover < 15
    assert set(by_job) == set(job_ids)
    for job_id, names in by_job.items():
        assert sorted(names) == [f"{job_id}-0", f"{job_id}-1"]
