"""The API under load on PostgreSQL: submissions, then list and get with 100k jobs stored.

Starts ``yushan api`` (uvicorn, ``--workers`` processes) on a fresh PostgreSQL schema, creates a
flavor, a tenant with quota and a member, then drives ``POST /v1/jobs`` with ``wrk`` (a C load
generator, so the client costs little of the machine's two cores) and reads the latency
percentiles ``wrk --latency`` prints, at saturation (every connection always busy) and again
paced below it (``PACED_RATES``: latency without queueing for a core). It counts the rows to
check that every 201 is a job, then copies the newest job until 100,000 more are stored and
drives ``GET /v1/jobs?limit=50`` (a member's newest page) and ``GET /v1/jobs/{id}`` (random
ids) the same two ways. For each run it
reports the CPU per request of the API processes, of PostgreSQL (all its processes, so anything
else using it counts too) and of wrk itself, so the client's share of the two cores is known.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from store.models import Job

POSTGRES_URL = os.environ.get(
    "YUSHAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CONNECTIONS = 32
DURATION_SECONDS = int(os.environ.get("YUSHAN_BENCH_SECONDS", "30"))
WORKERS = int(os.environ.get("YUSHAN_BENCH_API_WORKERS", "2"))
"""API processes: one per core of the 2-vCPU machine. Four cost more CPU per request (each
process commits its own groups, so more processes make smaller groups); while other work held
a core, one process did better than two (see docs/benchmarks.md)."""
PACED_RATES = {
    "submit": float(os.environ.get("YUSHAN_BENCH_SUBMIT_RATE", "2000")),
    "list_newest_50": float(os.environ.get("YUSHAN_BENCH_LIST_RATE", "250")),
    "get_by_id": float(os.environ.get("YUSHAN_BENCH_GET_RATE", "500")),
}
"""Offered rates (requests/s) of the paced runs, below saturation: latency without queueing
for a core. Each of the 32 connections waits a random time, exponential with mean 32/rate
seconds, before each request (wrk's ``delay()``; a fixed delay would keep the connections in
step, sending bursts of 32), so the rate achieved is under the one offered (each
connection's latency adds to its waits): 2,000/s offered gave 1,132 submissions/s on an
otherwise idle machine (the target's rate), 1,300/s about 800-880/s."""
PACED_SECONDS = int(os.environ.get("YUSHAN_BENCH_PACED_SECONDS", "20"))
ADMIN = "ysh_bench_admin_token_0123456789"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.body = '%(body)s'
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _schema_url(schema: str) -> str:
    base = make_url(POSTGRES_URL)
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def _wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("API did not become ready")


def _setup(url: str) -> str:
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"})
    for path, body in [
        ("/v1/flavors", {"name": "h100"}),
        ("/v1/cohorts", {"name": "academic"}),
        (
            "/v1/tenants",
            {
                "name": "lab-a",
                "kind": "academic",
                "cohort": "academic",
                "quota": {"flavors": {"h100": {"gpu": {"nominal": 64}}}},
            },
        ),
        ("/v1/users", {"name": "alice"}),
        ("/v1/tenants/lab-a/members", {"user": "alice", "role": "member"}),
    ]:
        admin.post(path, json=body).raise_for_status()
    token: str = admin.post("/v1/users/alice/tokens", json={}).raise_for_status().json()["token"]
    return token


def _parse_wrk(output: str) -> dict[str, object]:
    def seconds(value: str, unit: str) -> float:
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

    percentiles = {
        f"p{p}": round(seconds(v, u) * 1000, 2)
        for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    total = re.search(r"(\d+) requests in", output)
    return {
        "requests_per_second": float(rate.group(1)) if rate else 0.0,
        "latency_ms": percentiles,
        "requests": int(total.group(1)) if total else 0,
        "non_2xx_responses": int(errors.group(1)) if errors else 0,
    }


READ_JOBS = int(os.environ.get("YUSHAN_BENCH_READ_JOBS", "100000"))
LIST_SCRIPT = """
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  return wrk.format("GET", "/v1/jobs?limit=50")
end
"""
GET_SCRIPT = """
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  return wrk.format("GET", string.format("/v1/jobs/x%%09d", math.random(1, %(count)d)))
end
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pids: list[int]) -> float:
    """CPU seconds of live processes (user + system), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _server_pids(server: subprocess.Popen[bytes]) -> list[int]:
    children = subprocess.run(
        ["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    return [server.pid, *(int(pid) for pid in children)]


def _postgres_pids() -> list[int]:
    found = subprocess.run(
        ["pgrep", "-x", "postgres"], capture_output=True, text=True, check=False
    ).stdout.split()
    return [int(pid) for pid in found]


def paced(script: str, rate: float) -> str:
    """``script`` with each connection waiting ``CONNECTIONS / rate`` on average (exponential
    waits: Poisson arrivals) before each request."""
    return script + PACE_SCRIPT % {"mean_ms": round(1000 * CONNECTIONS / rate, 3)}


PACE_SCRIPT = """
delay = function()
  return math.floor(-%(mean_ms)s * math.log(1 - math.random()))
end
"""


def _wrk(
    url: str, script: str, path: str, server: list[int], seconds: int | None = None
) -> dict[str, object]:
    """Run wrk; its figures plus the CPU the client, the API and PostgreSQL spent per request."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    client, api, database = _children_cpu(), _process_cpu(server), _process_cpu(_postgres_pids())
    duration = f"{seconds or DURATION_SECONDS}s"
    command = ["wrk", "--latency", "-t", "2", "-c", str(CONNECTIONS), "-d", duration]
    run = subprocess.run(
        [*command, "-s", file.name, f"{url}{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    Path(file.name).unlink()
    figures = _parse_wrk(run.stdout)
    requests = max(1, int(str(figures["requests"])))
    figures["cpu_ms_per_request"] = {
        "api": round(1000 * (_process_cpu(server) - api) / requests, 2),
        "postgresql": round(1000 * (_process_cpu(_postgres_pids()) - database) / requests, 2),
        "client_wrk": round(1000 * (_children_cpu() - client) / requests, 2),
    }
    return figures


def _fill(database_url: str, count: int) -> None:
    """Copy the newest job ``count`` times (ids x000000001...): a store of ``count`` more jobs
    for the read benchmarks, written in one statement."""
    columns = [c.name for c in Job.__table__.columns if c.name not in ("seq", "id")]
    listed = ", ".join(f'"{c}"' for c in columns)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO jobs (id, {listed}) "
                f"SELECT 'x' || lpad(g::text, 9, '0'), {listed} FROM jobs, "
                "generate_series(1, :count) AS g WHERE jobs.seq = (SELECT max(seq) FROM jobs)"
            ),
            {"count": count},
        )
        connection.execute(text("ANALYZE jobs"))
    engine.dispose()


def start_api(database_url: str, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """``yushan api`` on a free port against ``database_url``, once it answers; its URL."""
    port = _free_port()
    env = {
        **os.environ,
        "YUSHAN_DATABASE_URL": database_url,
        "YUSHAN_BOOTSTRAP_TOKEN": ADMIN,
        "YUSHAN_LOG_LEVEL": "WARNING",
    }
    yushan = str(Path(sys.executable).with_name("yushan"))
    server = subprocess.Popen(
        [yushan, "api", "--port", str(port), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url)
    except RuntimeError:
        server.kill()
        raise
    return server, url


def main() -> dict[str, object]:
    """Submissions for ``DURATION_SECONDS``, then list and get with ``READ_JOBS`` more stored."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    schema = f"yushan_bench_{uuid.uuid4().hex[:8]}"
    database_url = _schema_url(schema)
    server: subprocess.Popen[bytes] | None = None
    try:
        server, url = start_api(database_url, "--workers", str(WORKERS))
        token = _setup(url)
        pids = _server_pids(server)
        body = json.dumps(
            {"tenant": "lab-a", "name": "bench", "image": "pytorch", "flavor": "h100", "gpus": 1}
        )
        submit_script = WRK_SCRIPT % {"token": token, "body": body}
        submit = _wrk(url, submit_script, "/v1/jobs", pids)
        submit_paced = _wrk(
            url, paced(submit_script, PACED_RATES["submit"]), "/v1/jobs", pids, PACED_SECONDS
        )
        engine = create_engine(database_url)
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT count(*) FROM jobs")).scalar_one()
        engine.dispose()
        _fill(database_url, READ_JOBS)
        read_scripts = {
            "list_newest_50": LIST_SCRIPT % {"token": token},
            "get_by_id": GET_SCRIPT % {"token": token, "count": READ_JOBS},
        }
        reads: dict[str, object] = {}
        for name, script in read_scripts.items():
            reads[name] = _wrk(url, script, "/v1/jobs", pids)
            reads[f"{name}_paced"] = {
                "offered_per_second": PACED_RATES[name],
                **_wrk(url, paced(script, PACED_RATES[name]), "/v1/jobs", pids, PACED_SECONDS),
            }
        return {
            "benchmark": "api",
            "connections": CONNECTIONS,
            "duration_seconds": DURATION_SECONDS,
            "api_workers": WORKERS,
            "database": "postgresql",
            "submit": {**submit, "jobs_stored": stored},
            "submit_paced": {"offered_per_second": PACED_RATES["submit"], **submit_paced},
            "reads": {**reads, "jobs_stored": stored + READ_JOBS},
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        cleanup = create_engine(make_url(POSTGRES_URL))
        with cleanup.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        cleanup.dispose()


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
