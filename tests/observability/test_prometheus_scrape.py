"""End to end: a real Prometheus scrapes Yushan's /metrics and PromQL sees the expected values.

The ``metrics_target`` fixture serves a metric set populated through the update functions with
:class:`scheduler.metrics.MetricsServer` on a loopback port. To test a running control plane
instead, override it with a fixture that yields the API's or scheduler's ``host:port`` and the
metric set that process updates (the assertions only need the values the fixture put there).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.metrics import MetricsServer, YushanMetrics
from tests.observability.populate import REPORT, populated_metrics

pytestmark = pytest.mark.slow

SCRAPE_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Target:
    address: str
    metrics: YushanMetrics


@pytest.fixture
def metrics_target() -> Iterator[Target]:
    """Yushan's MetricsServer on a free loopback port, serving a populated metric set."""
    metrics = populated_metrics()
    server = MetricsServer(metrics, "127.0.0.1", 0)
    server.start()
    yield Target(f"127.0.0.1:{server.port}", metrics)
    server.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_prometheus(config: Path, storage: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    port = _free_port()
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


def _wait_ready(process: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + SCRAPE_WAIT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def prometheus(metrics_target: Target, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the target every second; yields its base URL."""
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: yushan\n"
        f"    static_configs: [{{targets: ['{metrics_target.address}']}}]\n"
    )
    for attempt in range(3):  # the free port may be taken between probing and binding
        process, url = _start_prometheus(config, tmp_path / f"data-{attempt}")
        if _wait_ready(process, url):
            break
        _stop(process)
    else:
        pytest.fail("prometheus did not become ready")
    yield url
    _stop(process)


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


def test_prometheus_scrapes_the_metrics_and_promql_returns_them(
    prometheus: str, metrics_target: Target
) -> None:
    assert wait_for_value(prometheus, 'up{job="yushan"}', 1) == 1

    expectations = {
        'yushan_tenant_pending_jobs{tenant="a", flavor="h100"}': 3,
        'sum by (tenant) (yushan_tenant_gpus_in_use{tenant="a"})': 12,
        'yushan_cluster_nodes{flavor="a100", ready="false"}': 1,
        'sum(yushan_jobs_submitted_total{tenant="a"})': 1,
        'yushan_jobs_preempted_total{reason="FairSharePreemption"}': 1,
        "yushan_job_admission_wait_seconds_count": 1,
        'yushan_job_admission_wait_seconds_bucket{le="60.0"}': 1,
        'yushan_dispatch_duration_seconds_count{result="error"}': 1,
        "yushan_scheduler_leader": 1,
    }
    for promql, expected in expectations.items():
        assert wait_for_value(prometheus, promql, expected) == expected, promql


def test_prometheus_follows_updates_and_drops_vanished_series(
    prometheus: str, metrics_target: Target
) -> None:
    assert wait_for_value(prometheus, 'yushan_tenant_pending_jobs{tenant="b"}', 1) == 1

    metrics_target.metrics.job_submitted("a", "h100")
    metrics_target.metrics.publish_state(
        replace(
            REPORT,
            tenant_flavors=(replace(REPORT.tenant_flavors[0], pending_jobs=5),),
            tenants=REPORT.tenants[:1],
        )
    )

    assert wait_for_value(prometheus, 'yushan_tenant_pending_jobs{tenant="a"}', 5) == 5
    assert wait_for_value(prometheus, 'sum(yushan_jobs_submitted_total{tenant="a"})', 2) == 2
    assert wait_until_absent(prometheus, 'yushan_tenant_pending_jobs{tenant="b"}')
    assert wait_until_absent(prometheus, 'yushan_tenant_weight{tenant="b"}')
