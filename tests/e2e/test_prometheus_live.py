"""A real Prometheus scrapes a running control plane with jobs in flight; PromQL sees them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, wait_for
from tests.observability.prometheus_runner import running_prometheus, wait_for_value

pytestmark = pytest.mark.xdist_group("prometheus-live")


def test_promql_sees_jobs_in_flight(server: Server, tenant: str, tmp_path: Path) -> None:
    spec = {
        "tenant": tenant,
        "name": "promql",
        "image": "pytorch",
        "flavor": "h100",
        "gpus": 4,
        "annotations": {"sim.yushan.io/duration-seconds": "100000"},
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec))
    ids = [server.cli("submit", str(path)).stdout.strip() for _ in range(3)]
    wait_for(lambda: all(server.cli_json("jobs", "get", i)["status"] == "running" for i in ids))
    address = server.url.removeprefix("http://")
    with running_prometheus([address], tmp_path) as prometheus:
        expectations = {
            'up{job="yushan"}': 1,
            'yushan_tenant_running_jobs{tenant="lab-a", flavor="h100"}': 3,
            'yushan_tenant_gpus_in_use{tenant="lab-a", flavor="h100"}': 12,
            'yushan_tenant_nominal_quota_gpus{tenant="lab-a", flavor="h100"}': 16,
            'sum(yushan_jobs_submitted_total{tenant="lab-a"})': 3,
            'sum(yushan_jobs_admitted_total{tenant="lab-a"})': 3,
            'yushan_cluster_capacity_gpus{flavor="h100"}': 32,
            "yushan_scheduler_leader": 1,
        }
        for promql, expected in expectations.items():
            assert wait_for_value(prometheus, promql, expected) == expected, promql
    for job_id in ids:
        server.cli("jobs", "cancel", job_id)
