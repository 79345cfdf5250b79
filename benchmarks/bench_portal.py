"""Portal page latency with 10,000 jobs stored: p50/p95 of each page, signed in.

Seeds a database the way a busy installation looks: 4 tenants, 20 users, 10,000 jobs (9,500
finished over the last 28 days, 300 running with placements on 64 nodes, 200 queued)
submitted through :func:`store.jobs.submit`, then starts ``yushan api`` (uvicorn, one process, as
``make run`` serves it) on that database, signs in through the portal's form and requests each
page ``REQUESTS`` times, one at a time, from one client (the figure is the server's answer
time as a browser sees it, not a throughput). Runs on SQLite (``make run``'s database) and on
PostgreSQL.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from api.app import create_app, prepare_database
from api.settings import ApiSettings
from benchmarks.bench_api import ADMIN, POSTGRES_URL, _schema_url, start_api
from quotas.money import MICRO
from store import cluster, heartbeat, jobs, ledger, tenants, users, wallets
from store.common import new_job_id, utcnow
from store.db import create_db_engine, session_factory, transaction
from store.jobstates import JobStatus
from store.models import Job, LedgerEntry

JOBS = int(os.environ.get("YUSHAN_BENCH_PORTAL_JOBS", "10000"))
REQUESTS = int(os.environ.get("YUSHAN_BENCH_PORTAL_REQUESTS", "200"))
RUNNING = 300
QUEUED = int(os.environ.get("YUSHAN_BENCH_PORTAL_QUEUED", "200"))
"""Waiting jobs (of all tenants). The tenant page explains its tenant's queue as
``GET /v1/tenants/{name}/queue`` does, which costs time in proportion to every waiting and
running job (the scheduler's snapshot): see docs/benchmarks.md for the figure with 700."""
TENANTS = [f"lab-{i}" for i in range(4)]
NODES = 64
LEDGER_INTERVAL = 600
"""Seconds of run time per seeded ledger row."""
GIB = 1 << 30


def _seed(database_url: str) -> dict[str, str]:
    """The platform, the jobs and the nodes; returns a job id of lab-0 and alice's token."""
    settings = ApiSettings(database_url=database_url, bootstrap_token=ADMIN)
    engine = create_db_engine(database_url)
    create_app(settings, engine)
    prepare_database(settings, engine)
    sessions = session_factory(engine)
    rng = random.Random(14)
    with transaction(sessions) as session:
        cluster.replace_nodes(
            session,
            [
                cluster.NodeRecord(
                    f"h100-{i}",
                    "h100",
                    {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                    8,
                    8,
                    0,
                    96_000,
                    1024 * GIB,
                    ready=i != 3,
                    schedulable=i != 5,
                )
                for i in range(NODES)
            ],
        )
        tenants.create_flavor(
            session, "h100", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, 4000, 90 * GIB
        )
        tenants.create_cohort(session, "academic", None)
        for tenant in TENANTS:
            tenants.create_tenant(
                session, tenant, "academic", "academic", 1.0, namespace=f"yushan-{tenant}"
            )
            tenants.set_quota(
                session, tenants.TENANT, tenant, {"h100": {"gpu": tenants.Limits(128, 64, None)}}
            )
        for i in range(20):
            users.create_user(session, f"user-{i}")
            users.set_membership(session, TENANTS[i % 4], f"user-{i}", "member")
        users.create_user(session, "alice")
        users.set_membership(session, "lab-0", "alice", "tenant-admin")
        token = users.issue_token(session, "alice").secret
    now = utcnow()
    nodes = [f"h100-{i}" for i in range(NODES)]
    with transaction(sessions) as session:
        for n in range(JOBS):
            tenant = TENANTS[n % 4]
            request = jobs.JobRequest(
                tenant=tenant,
                name=f"train-{n}",
                image="pytorch",
                flavor="h100",
                gpus=rng.choice((1, 2, 4, 8)),
                workers=rng.choice((1, 1, 2)),
            )
            jobs.submit(session, request, user=f"user-{n % 20}", job_id=new_job_id())
        session.flush()
        rows = list(session.query(Job).order_by(Job.seq))
        for index, job in enumerate(rows):
            job.created_at = now - timedelta(seconds=(len(rows) - index) * 240)
            if index < JOBS - RUNNING - QUEUED:
                job.status = rng.choice(
                    (
                        JobStatus.SUCCEEDED,
                        JobStatus.SUCCEEDED,
                        JobStatus.FAILED,
                        JobStatus.CANCELLED,
                    )
                ).value
                job.started_at = job.created_at + timedelta(seconds=60)
                job.finished_at = job.started_at + timedelta(seconds=rng.randint(600, 20_000))
            elif index < JOBS - QUEUED:
                job.status = JobStatus.RUNNING.value
                job.started_at = now - timedelta(seconds=rng.randint(60, 7200))
                job.placement = [rng.choice(nodes) for _ in range(job.workers)]
            else:
                job.queue_position = index
        sample = next(j.id for j in rows if j.tenant == "lab-0" and j.status == "running")
        _seed_ledger(session, rows)
        wallets.credit(session, "lab-0", "topup", 1_000_000 * MICRO, actor="admin", note="grant")
    engine.dispose()
    return {"token": token, "job": sample, "month": (now - timedelta(days=14)).strftime("%Y-%m")}


def _seed_ledger(session: Session, rows: list[Job]) -> None:
    """The finished jobs' run time in the ledger, one row per ``LEDGER_INTERVAL`` of it (the
    loop writes one per ``YUSHAN_ACCRUAL_INTERVAL_SECONDS``, 60 by default: a real ledger
    holds ten times as many rows per job), at 82 credits per GPU-hour. Appended as the loop
    appends them (:func:`store.ledger.append`), so the roll-ups the wallet page reads are kept."""
    price = 82 * MICRO
    entries = []
    for job in rows:
        if job.started_at is None or job.finished_at is None:
            continue
        start = round(job.started_at.timestamp() * 1000)
        end = round(job.finished_at.timestamp() * 1000)
        gpus = job.gpus * job.workers
        for low in range(start, end, LEDGER_INTERVAL * 1000):
            high = min(end, low + LEDGER_INTERVAL * 1000)
            entries.append(
                LedgerEntry(
                    job_id=job.id,
                    attempt=0,
                    kind=ledger.RUN,
                    tenant=job.tenant,
                    user=job.user,
                    flavor=job.flavor,
                    start_ms=low,
                    end_ms=high,
                    gpus=gpus,
                    cpu_milli=0,
                    memory_bytes=0,
                    gpu_hour=price,
                    cost=(high - low) * gpus * price // 3_600_000,
                    charged_to_wallet=True,
                )
            )
    ledger.append(session, entries)


def _signed_in(url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    nonce = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/sign-in").text)
    assert nonce is not None
    response = client.post("/ui/sign-in", data={"csrf": nonce.group(1), "token": token})
    assert response.status_code == 303, response.text
    return client


def _measure(
    client: httpx.Client,
    path: str,
    headers: dict[str, str] | None = None,
    before: Callable[[], None] | None = None,
) -> dict[str, float]:
    """``before`` runs ahead of each request, untimed."""
    timings = []
    for _ in range(REQUESTS):
        if before is not None:
            before()
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 286), f"{path}: {response.status_code}"
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
        "max_ms": round(timings[-1], 1),
    }


def _pages(seeded: dict[str, str]) -> dict[str, tuple[str, str, dict[str, str] | None]]:
    job = seeded["job"]
    return {
        "jobs": ("alice", "/ui/jobs", None),
        "jobs_live_refresh": ("alice", "/ui/jobs", {"HX-Request": "true"}),
        "jobs_filtered_queued": ("alice", "/ui/jobs?status=queued", None),
        "job": ("alice", f"/ui/jobs/{job}", None),
        "job_live_refresh": ("alice", f"/ui/jobs/{job}", {"HX-Request": "true"}),
        "submit_form": ("alice", "/ui/jobs/new", None),
        "tenant": ("alice", "/ui/tenants/lab-0", None),
        "tenant_queue_fragment": ("alice", "/ui/tenants/lab-0/queue", {"HX-Request": "true"}),
        "wallet": ("alice", f"/ui/tenants/lab-0/wallet?month={seeded['month']}", None),
        "admin_jobs_all_tenants": ("admin", "/ui/jobs", None),
        "cluster": ("admin", "/ui/admin/cluster", None),
        "tenants_and_cohorts": ("admin", "/ui/admin/tenants", None),
        "quota_form": ("admin", "/ui/admin/quota/tenant/lab-0", None),
        "share": ("admin", "/ui/admin/share", None),
        "audit": ("admin", "/ui/admin/audit", None),
    }


def _iteration(engine: Engine) -> Callable[[], None]:
    """What a scheduler iteration leaves behind for the API's queue cache: a new heartbeat
    (:mod:`store.changes`), so the next queue request explains the queue again."""
    sessions = session_factory(engine)

    def beat() -> None:
        with transaction(sessions) as session:
            heartbeat.beat(session, "bench", utcnow(), interval_seconds=15, create_namespaces=False)

    return beat


def _run(database: str, database_url: str) -> dict[str, object]:
    seeded = _seed(database_url)
    server, url = start_api(database_url)
    engine = create_db_engine(database_url)
    try:
        clients = {"alice": _signed_in(url, seeded["token"]), "admin": _signed_in(url, ADMIN)}
        pages = {
            name: _measure(clients[who], path, headers)
            for name, (who, path, headers) in _pages(seeded).items()
        }
        # The queue fragment when every request follows a change of state: the cache's worst
        # case, what each request cost before the cache.
        pages["tenant_queue_fragment_after_each_iteration"] = _measure(
            clients["alice"], *_pages(seeded)["tenant_queue_fragment"][1:], _iteration(engine)
        )
    finally:
        engine.dispose()
        server.terminate()
        server.wait(timeout=30)
    worst = max(figures["p95_ms"] for figures in pages.values())
    return {
        "database": database,
        "jobs": JOBS,
        "running": RUNNING,
        "queued": QUEUED,
        "requests_per_page": REQUESTS,
        "worst_p95_ms": worst,
        "pages": pages,
    }


def main() -> dict[str, object]:
    results: dict[str, object] = {"benchmark": "portal_pages"}
    with tempfile.TemporaryDirectory() as directory:
        results["sqlite"] = _run("sqlite", f"sqlite:///{directory}/portal.db")
    schema = f"yushan_bench_{uuid.uuid4().hex[:8]}"
    url = _schema_url(schema)
    try:
        results["postgresql"] = _run("postgresql", url)
    finally:
        engine = create_engine(make_url(POSTGRES_URL))
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
