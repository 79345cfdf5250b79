"""Accrual survives SIGKILL: a real ``yushan scheduler`` process runs jobs on the embedded
cluster (SQLite and PostgreSQL) and is killed with SIGKILL several times while it accrues. In
the end each job's ledger run time equals its pods' run time (as their status reports it, in
whole seconds) within one iteration, no interval is counted twice, and the wallet's balance is
exactly its top-up less the ledger's charges, which its transactions sum to; the roll-ups the
statements read equal the ledger's ``GROUP BY``."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from k8s.sim.cluster import EmbeddedCluster
from quotas.money import MICRO, Rate
from store import jobs, prices, tenants, users, wallets
from store.common import new_job_id
from store.db import session_factory, transaction
from store.models import Job, LedgerEntry, WalletTransaction
from store.tenants import TENANT, Limits
from tests.ports import free_port
from tests.rollups import assert_rollups_match_the_ledger

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.xdist_group("accrual-kill")
TIME_SCALE = 0.05
DURATIONS = (60, 80, 100, 120)
"""Simulated seconds (3 to 6 s of real time at the time scale)."""
TOLERANCE_MS = 1500
"""Pod status times are whole seconds (up to 1 s early), plus one iteration at most."""


def _scheduler(url: str, kubeconfig: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("YUSHAN_")},
        "YUSHAN_DATABASE_URL": url,
        "YUSHAN_LEADER_ELECTION": "false",
        "YUSHAN_METRICS_HOST": "127.0.0.1",
        "YUSHAN_METRICS_PORT": str(free_port()),
        "YUSHAN_CYCLE_INTERVAL_SECONDS": "0.2",
        "YUSHAN_ACCRUAL_INTERVAL_SECONDS": "0",
        "YUSHAN_LOG_FORMAT": "text",
    }
    return subprocess.Popen(
        [str(BIN / "yushan"), "scheduler", "--kubeconfig", str(kubeconfig)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _pod_run_ms(pod: dict[str, object]) -> int:
    statuses = pod["status"]["containerStatuses"]  # type: ignore[index]
    terminated = statuses[0]["state"]["terminated"]
    started = datetime.fromisoformat(terminated["startedAt"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(terminated["finishedAt"].replace("Z", "+00:00"))
    return round((finished - started).total_seconds() * 1000)


def test_sigkill_during_accrual_loses_and_repeats_nothing(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        tenants.create_flavor(
            session, "h100", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, 4000, 2**30
        )
        tenants.create_tenant(session, "acme", "industry", None, 1.0, "yushan-acme")
        tenants.set_quota(session, TENANT, "acme", {"h100": {"gpu": Limits(32)}})
        users.create_user(session, "alice")
        prices.set_prices(session, [prices.PriceEntry("h100", "industry", Rate(82 * MICRO))])
        wallets.credit(session, "acme", "topup", 1000 * MICRO, actor="admin")
        job_ids = [
            jobs.submit(
                session,
                jobs.JobRequest(
                    tenant="acme",
                    name="paid",
                    image="pytorch",
                    flavor="h100",
                    gpus=2,
                    annotations={"sim.yushan.io/duration-seconds": str(seconds)},
                ),
                user="alice",
                job_id=new_job_id(),
            ).job.id
            for seconds in DURATIONS
        ]

    def statuses() -> list[str]:
        with sessions() as session:
            return list(session.scalars(select(Job.status).where(Job.id.in_(job_ids))))

    kills = 0
    rng = random.Random(12)
    with EmbeddedCluster(time_scale=TIME_SCALE) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        process = _scheduler(database_url, kubeconfig)
        try:
            deadline = time.monotonic() + 90
            while set(statuses()) != {"succeeded"}:
                assert time.monotonic() < deadline, statuses()
                time.sleep(rng.uniform(0.4, 1.2))
                if kills < 5 and "running" in statuses():
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=10)
                    kills += 1
                    process = _scheduler(database_url, kubeconfig)
        finally:
            process.kill()
            process.wait(timeout=10)
        pods = cluster.pods()
    assert kills >= 3
    pod_ms = {p["metadata"]["labels"]["yushan.io/job"]: _pod_run_ms(p) for p in pods}
    with sessions() as session:
        rows = session.scalars(select(LedgerEntry)).all()
        balance = wallets.view(session, "acme").balance
        transactions = session.scalar(select(func.sum(WalletTransaction.amount)))
        assert_rollups_match_the_ledger(session)  # what the killed iterations left behind
    for job_id in job_ids:
        intervals = sorted((r.start_ms, r.end_ms) for r in rows if r.job_id == job_id)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(intervals))
        ledger_ms = sum(end - start for start, end in intervals)
        assert 0 <= ledger_ms - pod_ms[job_id] <= TOLERANCE_MS, (job_id, ledger_ms, pod_ms)
        assert {r.gpus for r in rows if r.job_id == job_id} == {2}
    charged = sum(r.cost for r in rows)
    assert charged > 0
    assert balance == 1000 * MICRO - charged == transactions
