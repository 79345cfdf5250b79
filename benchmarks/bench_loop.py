"""The scheduler loop at scale and under load (issue 8): requests per steady-state iteration,
submit-to-pods-created latency, and commits under concurrent API traffic.

* ``loop_steady`` — 1,000 nodes x 8 GPUs and 10,000 pods (4,000 single-GPU Yushan jobs running
  plus 6,000 pods Yushan did not create) on the embedded cluster, PostgreSQL. The loop reads the
  cluster from its watch cache; after everything runs, ``ITERATIONS`` iterations are timed and
  the API server's requests counted per verb (its own per-verb counter). Then the loop runs
  event-driven for ``IDLE_SECONDS`` with nothing happening: how many iterations and requests an
  idle system costs.
* ``loop_latency`` — ``yushan serve --embedded`` (API, loop and cluster in one process, SQLite
  and PostgreSQL) with 1,000 jobs queued that cannot run (their flavor has no free node); then
  jobs that can run are submitted one at a time through the REST API and the time from the
  POST to the pod's ADDED watch event (seen by this process) is measured.
* ``loop_mixed`` — ``yushan api`` (PostgreSQL) and ``yushan scheduler`` as separate processes,
  the embedded cluster in a third; 32 clients submit, cancel, list and get for ``MIXED_SECONDS``.
  The scheduler's /metrics is read every 10 s: iterations that committed vs rolled back, jobs
  admitted per window, and how many job decisions were dropped because the job changed.

All loads target 127.0.0.1 only and are bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.bench_api import POSTGRES_URL, _free_port, _schema_url, _wait_healthy
from k8s.client import ClusterClient
from k8s.sim import EmbeddedCluster
from k8s.watcher import ClusterWatcher
from scheduler.loop import LoopSettings, SchedulerLoop
from scheduler.policy import Policy
from store import jobs, tenants, users
from store.common import new_job_id
from store.db import create_db_engine, session_factory, transaction
from store.migrate import upgrade
from store.tenants import TENANT, Limits

ADMIN = "ysh_bench_admin_token_0123456789"
ITERATIONS = int(os.environ.get("YUSHAN_BENCH_ITERATIONS", "20"))
IDLE_SECONDS = float(os.environ.get("YUSHAN_BENCH_IDLE_SECONDS", "10"))
MIXED_SECONDS = int(os.environ.get("YUSHAN_BENCH_SECONDS", "60"))
LATENCY_SAMPLES = int(os.environ.get("YUSHAN_BENCH_SAMPLES", "100"))
FOREVER = {"sim.yushan.io/duration-seconds": "1000000"}


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _nodes_file(directory: Path, groups: list[dict[str, Any]]) -> Path:
    path = directory / "nodes.yaml"
    path.write_text(yaml.safe_dump({"nodes": groups}))
    return path


def _gpu_group(name: str, count: int, flavor: str) -> dict[str, Any]:
    return {
        "name": name,
        "count": count,
        "gpus": 8,
        "cpu": "128",
        "memory": "2048Gi",
        "labels": {"yushan.io/flavor": flavor},
    }


@contextlib.contextmanager
def _postgres_schema() -> Iterator[str]:
    schema = f"yushan_bench_{uuid.uuid4().hex[:8]}"
    url = _schema_url(schema)
    try:
        yield url
    finally:
        cleanup = create_engine(make_url(POSTGRES_URL))
        with cleanup.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        cleanup.dispose()


def _wait(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


# -- loop_steady ------------------------------------------------------------------------------


def _foreign_pod(i: int, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"other-{i}", "namespace": "default", "annotations": FOREVER},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


def steady_main(
    nodes: int = 1000, yushan_jobs: int = 4000, foreign_pods: int = 6000
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, _postgres_schema() as url:
        upgrade(url)
        engine = create_db_engine(url)
        sessions = session_factory(engine)
        with transaction(sessions) as session:
            tenants.create_flavor(session, "h100", {}, 4000, 16 * 2**30)
            tenants.create_tenant(session, "lab-a", "academic", None, 1.0, "yushan-lab-a")
            tenants.set_quota(session, TENANT, "lab-a", {"h100": {"gpu": Limits(nodes * 8)}})
            users.create_user(session, "alice")
        nodes_file = _nodes_file(Path(tmp), [_gpu_group("gpu", nodes, "h100")])
        with EmbeddedCluster(nodes_file, startup_delay=0.0) as cluster:
            client = ClusterClient.from_kubeconfig(cluster.write_kubeconfig(Path(tmp) / "kc"))
            for start in range(0, foreign_pods, 500):
                batch = range(start, min(foreign_pods, start + 500))
                futures = [
                    client._executor().submit(
                        client.transport.request,
                        "POST",
                        "/api/v1/namespaces/default/pods",
                        body=_foreign_pod(i, f"gpu-{i % nodes}"),
                    )
                    for i in batch
                ]
                for future in futures:
                    future.result()
            request = jobs.JobRequest(
                tenant="lab-a", name="steady", image="pytorch", flavor="h100", gpus=1,
                annotations=FOREVER,
            )  # fmt: skip
            with transaction(sessions) as session:
                for _ in range(yushan_jobs):
                    jobs.submit(session, request, user="alice", job_id=new_job_id())
            watcher = ClusterWatcher(client, watch_timeout_seconds=300).start()
            assert watcher.wait_synced(60)
            loop = SchedulerLoop(
                sessions, client, Policy.named("fair"), view=watcher,
                settings=LoopSettings(interval_seconds=30.0),
            )  # fmt: skip
            watcher.add_listener(loop.notify)
            loop.run_once()  # admits and dispatches everything

            def all_running() -> bool:
                loop.run_once()
                with engine.connect() as connection:
                    running = connection.execute(
                        text("SELECT count(*) FROM jobs WHERE status = 'running'")
                    ).scalar_one()
                return bool(running == yushan_jobs)

            _wait(all_running, "every job to run", 300)
            pods = len(cluster.pods())
            verbs = ("list", "watch", "get", "create", "update", "patch", "delete")
            before = {verb: cluster.request_count(verb) for verb in verbs}
            durations = []
            for _ in range(ITERATIONS):
                started = time.perf_counter()
                loop.run_once()
                durations.append(time.perf_counter() - started)
            after = {verb: cluster.request_count(verb) for verb in verbs}
            per_iteration = {v: (after[v] - before[v]) / ITERATIONS for v in verbs}

            # Idle: the loop waits for events; nothing happens for IDLE_SECONDS.
            stop = threading.Event()
            thread = threading.Thread(target=loop.run_forever, args=(stop,), daemon=True)
            thread.start()
            time.sleep(1.0)  # its first iteration (run_forever starts with one)
            idle_before = loop.iterations
            requests_before = cluster.request_count() - cluster.request_count("watch")
            time.sleep(IDLE_SECONDS)
            idle_iterations = loop.iterations - idle_before
            idle_requests = cluster.request_count() - cluster.request_count("watch")
            idle_requests -= requests_before
            stop.set()
            thread.join(30)
            watcher.stop()
            client.close()
        engine.dispose()
    return {
        "name": "loop_steady",
        "command": ".venv/bin/python -m benchmarks.run loop_steady",
        "nodes": nodes,
        "pods": pods,
        "yushan_jobs_running": yushan_jobs,
        "iterations_timed": ITERATIONS,
        "requests_per_iteration": per_iteration,
        "iteration_ms_p50": round(1000 * statistics.median(durations), 1),
        "iteration_ms_max": round(1000 * max(durations), 1),
        "idle_seconds": IDLE_SECONDS,
        "idle_iterations": idle_iterations,
        "idle_requests_other_than_watch": idle_requests,
        "watch_relists": watcher.stats(),
    }


# -- loop_latency -----------------------------------------------------------------------------


def _setup_tenant(url: str) -> str:
    """Flavors h100 (free) and a100 (one node), tenant lab-a, member alice; alice's token."""
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
    quota = {"h100": {"gpu": {"nominal": 4000}}, "a100": {"gpu": {"nominal": 8000}}}
    for path, body in [
        ("/v1/flavors", {"name": "h100"}),
        ("/v1/flavors", {"name": "a100"}),
        ("/v1/tenants", {"name": "lab-a", "kind": "academic", "quota": {"flavors": quota}}),
        ("/v1/users", {"name": "alice"}),
        ("/v1/tenants/lab-a/members", {"user": "alice", "role": "member"}),
    ]:
        admin.post(path, json=body).raise_for_status()
    token: str = admin.post("/v1/users/alice/tokens", json={}).raise_for_status().json()["token"]
    admin.close()
    return token


def _job(flavor: str, gpus: int, seconds: float = 1e6) -> dict[str, Any]:
    return {
        "tenant": "lab-a",
        "name": "bench",
        "image": "pytorch",
        "flavor": flavor,
        "gpus": gpus,
        "annotations": {"sim.yushan.io/duration-seconds": str(seconds)},
    }


def _latency_round(database_url: str, queued: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        nodes = _nodes_file(directory, [_gpu_group("h", 125, "h100"), _gpu_group("a", 1, "a100")])
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("YUSHAN_")},
            "YUSHAN_DATABASE_URL": database_url,
            "YUSHAN_BOOTSTRAP_TOKEN": ADMIN,
            "YUSHAN_LOG_LEVEL": "WARNING",
        }
        yushan = str(Path(sys.executable).with_name("yushan"))
        command = [yushan, "serve", "--embedded", "--nodes", str(nodes), "--port", str(port)]
        server = subprocess.Popen(
            command, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_healthy(url)
            token = _setup_tenant(url)
            api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
            for _ in range(queued):  # a backlog the cycle reconsiders every time: a100 is full
                api.post("/v1/jobs", json=_job("a100", 8)).raise_for_status()

            def backlog_settled() -> bool:
                page = api.get("/v1/jobs", params={"status": "queued", "limit": 1}).json()
                return bool(page["items"]) and page["items"][0].get("queue_position") is not None

            _wait(backlog_settled, "the backlog to be queued", 120)
            client = ClusterClient.from_kubeconfig(directory / "var" / "kubeconfig")
            changed = threading.Event()
            watcher = ClusterWatcher(client, watch_timeout_seconds=300)
            watcher.add_listener(changed.set)
            watcher.start()
            assert watcher.wait_synced(30)
            latencies: list[float] = []
            for _ in range(LATENCY_SAMPLES):
                time.sleep(random.uniform(0.1, 0.3))
                changed.clear()
                started = time.perf_counter()
                job_id = api.post("/v1/jobs", json=_job("h100", 1)).raise_for_status().json()["id"]
                deadline = started + 30
                while job_id not in watcher.gangs():
                    changed.wait(max(0.0, deadline - time.perf_counter()))
                    changed.clear()
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"no pod for {job_id} within 30 s")
                latencies.append(time.perf_counter() - started)
            watcher.stop()
            client.close()
            api.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "samples": len(latencies),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p90_ms": round(1000 * _percentile(latencies, 0.90), 1),
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies), 1),
    }


def latency_main(queued: int = 1000) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = _latency_round(f"sqlite:///{tmp}/yushan.db", queued)
    with _postgres_schema() as url:
        postgres = _latency_round(url, queued)
    return {
        "name": "loop_latency",
        "command": ".venv/bin/python -m benchmarks.run loop_latency",
        "target": {"p50_ms": 200, "p99_ms": 1000},
        "setup": f"yushan serve --embedded, 126 nodes x 8 GPUs, {queued} jobs queued",
        "measured": "POST /v1/jobs to the pod's ADDED watch event, one job at a time",
        "sqlite": sqlite,
        "postgresql": postgres,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


# -- loop_mixed -------------------------------------------------------------------------------

_CYCLES = re.compile(
    r'^yushan_scheduling_cycle_duration_seconds_count\{result="(success|error)"\} (\S+)$', re.M
)
_ADMITTED = re.compile(r"^yushan_jobs_admitted_total\{[^}]*\} (\S+)$", re.M)
_DROPPED = re.compile(r"(\d+) job\(s\) changed during the cycle")


def _scrape(port: int) -> tuple[float, float, float]:
    """(committed iterations, rolled-back iterations, jobs admitted) from /metrics."""
    text_ = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    cycles = {result: float(value) for result, value in _CYCLES.findall(text_)}
    admitted = sum(float(v) for v in _ADMITTED.findall(text_))
    return cycles.get("success", 0.0), cycles.get("error", 0.0), admitted


async def _client_load(url: str, token: str, seconds: float, clients: int) -> dict[str, Any]:
    """``clients`` concurrent clients mixing submit (40 %), cancel, list and get (20 % each)."""
    submitted: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:

        async def one_client(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                op = rng.choices(("submit", "cancel", "list", "get"), (4, 2, 2, 2))[0]
                if op == "submit":
                    body = _job("h100", rng.choice((1, 1, 2, 4)), rng.uniform(5, 15))
                    response = await http.post("/v1/jobs", json=body)
                    if response.status_code == 201:
                        submitted.append(response.json()["id"])
                elif op == "cancel" and submitted:
                    job_id = submitted.pop(rng.randrange(len(submitted)))
                    response = await http.post(f"/v1/jobs/{job_id}/cancel")
                elif op == "get" and submitted:
                    response = await http.get(f"/v1/jobs/{rng.choice(submitted)}")
                else:
                    op = "list"
                    response = await http.get("/v1/jobs", params={"limit": 20})
                by_status = counts.setdefault(op, {})
                key = str(response.status_code)
                by_status[key] = by_status.get(key, 0) + 1

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return counts


def mixed_main(clients: int = 32, nodes: int = 32) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, _postgres_schema() as database_url:
        directory = Path(tmp)
        nodes_file = _nodes_file(directory, [_gpu_group("gpu", nodes, "h100")])
        kubeconfig = directory / "kubeconfig"
        api_port, metrics_port = _free_port(), _free_port()
        url = f"http://127.0.0.1:{api_port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("YUSHAN_")},
            "YUSHAN_DATABASE_URL": database_url,
            "YUSHAN_BOOTSTRAP_TOKEN": ADMIN,
            "YUSHAN_LOG_LEVEL": "WARNING",
        }
        bin_dir = Path(sys.executable).parent
        processes: list[subprocess.Popen[bytes]] = []
        scheduler_log = directory / "scheduler.log"
        try:
            sim = [sys.executable, "-m", "k8s.sim", "--nodes", str(nodes_file)]
            cluster = subprocess.Popen(
                [*sim, "--kubeconfig", str(kubeconfig)], stdout=subprocess.PIPE
            )
            processes.append(cluster)
            assert cluster.stdout is not None
            cluster.stdout.readline()  # serving, kubeconfig written
            processes.append(
                subprocess.Popen(
                    [str(bin_dir / "yushan"), "api", "--port", str(api_port), "--workers", "2"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            _wait_healthy(url)
            token = _setup_tenant(url)
            scheduler_env = env | {
                "YUSHAN_LEADER_ELECTION": "false",
                "YUSHAN_METRICS_HOST": "127.0.0.1",
                "YUSHAN_METRICS_PORT": str(metrics_port),
                "YUSHAN_LOG_LEVEL": "INFO",
                "YUSHAN_LOG_FORMAT": "text",
            }
            with scheduler_log.open("wb") as log_file:
                processes.append(
                    subprocess.Popen(
                        [str(bin_dir / "yushan"), "scheduler", "--kubeconfig", str(kubeconfig)],
                        env=scheduler_env,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                    )
                )
            _wait(lambda: _scrape_or_none(metrics_port) is not None, "scheduler metrics", 60)
            windows: list[dict[str, float]] = []
            stop = threading.Event()

            def sample() -> None:
                last, started = _scrape(metrics_port), time.monotonic()
                while True:
                    stopping = stop.wait(max(0.0, started + 10.0 - time.monotonic()))
                    now = _scrape(metrics_port)
                    windows.append(
                        {
                            "seconds": round(time.monotonic() - started, 1),
                            "committed": now[0] - last[0],
                            "rolled_back": now[1] - last[1],
                            "admitted": now[2] - last[2],
                        }
                    )
                    if stopping:
                        return
                    last, started = now, time.monotonic()

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            counts = asyncio.run(_client_load(url, token, MIXED_SECONDS, clients))
            elapsed = time.monotonic() - started
            stop.set()
            sampler.join(15)
            engine = create_engine(database_url)
            with engine.connect() as connection:
                rows = connection.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))
                statuses: dict[str, int] = {str(s): int(n) for s, n in rows.all()}
                rows = connection.execute(
                    text("SELECT reason, count(*) FROM jobs WHERE status = 'failed' GROUP BY 1")
                )
                failed: dict[str, int] = {str(s): int(n) for s, n in rows.all()}
            engine.dispose()
        finally:
            for process in reversed(processes):
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
        log_text = scheduler_log.read_text(errors="replace")
    committed = sum(w["committed"] for w in windows)
    rolled_back = sum(w["rolled_back"] for w in windows)
    requests = sum(sum(by.values()) for by in counts.values())
    return {
        "name": "loop_mixed",
        "command": ".venv/bin/python -m benchmarks.run loop_mixed",
        "setup": (
            f"yushan api --workers 2 + yushan scheduler (separate processes, PostgreSQL), "
            f"embedded cluster {nodes} x 8 GPUs in a third process; {clients} clients"
        ),
        "target": {"commit_ratio": 0.95, "admissions": "in every 10-s window"},
        "seconds": round(elapsed, 1),
        "requests": requests,
        "requests_per_second": round(requests / elapsed, 1),
        "responses": counts,
        "iterations_committed": committed,
        "iterations_rolled_back": rolled_back,
        "commit_ratio": round(committed / max(1.0, committed + rolled_back), 4),
        "admissions_per_10s_window": [int(w["admitted"]) for w in windows],
        "window_seconds": [w["seconds"] for w in windows],
        "iterations_per_10s_window": [int(w["committed"] + w["rolled_back"]) for w in windows],
        "job_decisions_dropped_for_concurrent_changes": sum(
            int(n) for n in _DROPPED.findall(log_text)
        ),
        "jobs_by_status_at_end": statuses,
        "failed_jobs_by_reason": failed,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _scrape_or_none(port: int) -> tuple[float, float, float] | None:
    try:
        return _scrape(port)
    except httpx.HTTPError:
        return None
