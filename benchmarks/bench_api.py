"""Job submissions per second against PostgreSQL: 32 concurrent clients for 30 seconds.

Starts ``yushan api`` (uvicorn, ``--workers`` processes) on a fresh PostgreSQL schema, creates a
flavor, a tenant with quota and a member, then drives ``POST /v1/jobs`` with ``wrk`` (a C load
generator, so the client costs little of the machine's two cores) and reads the latency
percentiles ``wrk --latency`` prints. Finally it counts the rows to check that every 201 is a job.
"""

from __future__ import annotations

import json
import os
import re
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

POSTGRES_URL = os.environ.get(
    "YUSHAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CONNECTIONS = 32
DURATION_SECONDS = int(os.environ.get("YUSHAN_BENCH_SECONDS", "30"))
WORKERS = int(os.environ.get("YUSHAN_BENCH_API_WORKERS", "4"))
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
        for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)$", output, re.M)
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


def main() -> dict[str, object]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    schema = f"yushan_bench_{uuid.uuid4().hex[:8]}"
    database_url = _schema_url(schema)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "YUSHAN_DATABASE_URL": database_url,
        "YUSHAN_BOOTSTRAP_TOKEN": ADMIN,
        "YUSHAN_LOG_LEVEL": "WARNING",
    }
    yushan = str(Path(sys.executable).with_name("yushan"))
    server = subprocess.Popen(
        [yushan, "api", "--port", str(port), "--workers", str(WORKERS)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(url)
        token = _setup(url)
        body = json.dumps(
            {"tenant": "lab-a", "name": "bench", "image": "pytorch", "flavor": "h100", "gpus": 1}
        )
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_SCRIPT % {"token": token, "body": body})
        run = subprocess.run(
            [
                "wrk",
                "--latency",
                "-t",
                "2",
                "-c",
                str(CONNECTIONS),
                "-d",
                f"{DURATION_SECONDS}s",
                "-s",
                script.name,
                f"{url}/v1/jobs",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        Path(script.name).unlink()
        figures = _parse_wrk(run.stdout)
        engine = create_engine(database_url)
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT count(*) FROM jobs")).scalar_one()
        engine.dispose()
        figures.update(
            {
                "benchmark": "api_submit",
                "connections": CONNECTIONS,
                "duration_seconds": DURATION_SECONDS,
                "api_workers": WORKERS,
                "jobs_stored": stored,
                "database": "postgresql",
            }
        )
        return figures
    finally:
        server.terminate()
        server.wait(timeout=30)
        cleanup = create_engine(make_url(POSTGRES_URL))
        with cleanup.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        cleanup.dispose()


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
