"""A real Prometheus for tests: start it on a free loopback port, query it, stop it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ports import free_port

SCRAPE_WAIT_SECONDS = 30.0


def start_prometheus(config: Path, storage: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + SCRAPE_WAIT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for_value(prometheus: str, promql: str, expected: float) -> float | None:
    """Poll an instant query until its single value equals ``expected`` (bounded wait)."""
    seen: float | None = None
    deadline = time.monotonic() + SCRAPE_WAIT_SECONDS
    while time.monotonic() < deadline:
        result = query(prometheus, promql)
        seen = float(result[0]["value"][1]) if len(result) == 1 else None
        if seen == expected:
            break
        time.sleep(0.25)
    return seen


def wait_until_absent(prometheus: str, promql: str) -> bool:
    deadline = time.monotonic() + SCRAPE_WAIT_SECONDS
    while time.monotonic() < deadline:
        if not query(prometheus, promql):
            return True
        time.sleep(0.25)
    return False


@contextmanager
def running_prometheus(targets: list[str], workdir: Path) -> Iterator[str]:
    """A Prometheus scraping ``targets`` (host:port) every second; yields its base URL."""
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: yushan\n"
        f"    static_configs: [{{targets: {targets!r}}}]\n"
    )
    for attempt in range(3):  # the free port may be taken between probing and binding
        process, url = start_prometheus(config, workdir / f"data-{attempt}")
        if wait_ready(process, url):
            break
        stop(process)
    else:
        pytest.fail("prometheus did not become ready")
    try:
        yield url
    finally:
        stop(process)
