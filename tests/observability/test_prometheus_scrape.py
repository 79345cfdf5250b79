"""End to end: a real Prometheus scrapes Yushan's /metrics and PromQL sees the expected values.

The ``metrics_target`` fixture serves a metric set populated through the update functions with
:class:`scheduler.metrics.MetricsServer` on a loopback port. To test a running control plane
instead, override it with a fixture that yields the API's or scheduler's ``host:port`` and the
metric set that process updates (the assertions only need the values the fixture put there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from scheduler.metrics import MetricsServer, YushanMetrics
from tests.observability.populate import REPORT, populated_metrics
from tests.observability.prometheus_runner import (
    running_prometheus,
    wait_for_value,
    wait_until_absent,
)

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


@pytest.fixture
def prometheus(metrics_target: Target, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the target every second; yields its base URL."""
    with running_prometheus([metrics_target.address], tmp_path) as url:
        yield url


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
