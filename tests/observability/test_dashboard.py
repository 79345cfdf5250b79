"""The Grafana dashboard: a structure provisioning accepts, and PromQL over defined metrics.

Every panel query is also parsed by the real PromQL parser: the expressions, with Grafana's
variables substituted, are written as recording rules and checked with ``promtool check rules``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.promtool import (
    DASHBOARD,
    defined_metric_names,
    metric_names_in,
    promtool,
)

GRID_WIDTH = 24
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$tenant": ".*",
    "$flavor": ".*",
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    panel_exprs = [t["expr"] for p in _panels(dashboard) for t in p["targets"]]
    variable_queries = [
        v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"
    ]
    return panel_exprs + variable_queries


def test_dashboard_has_the_fields_provisioning_needs(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "yushan-overview"
    assert len(dashboard["uid"]) <= 40
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None
    assert dashboard["time"] == {"from": "now-6h", "to": "now"}


def test_datasource_is_a_template_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    for name in ("tenant", "flavor"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"


def test_panels_are_laid_out_on_the_grid(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    occupied: set[tuple[int, int]] = set()

    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells


def test_every_panel_has_queries_with_distinct_ref_ids(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids, panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]


@pytest.mark.parametrize(
    ("topic", "metric"),
    [
        ("queue depth per tenant", "yushan_tenant_pending_jobs"),
        ("wait time per tenant", "yushan_job_admission_wait_seconds_bucket"),
        ("GPUs allocated by flavor", "yushan_cluster_allocated_gpus"),
        ("GPU capacity by flavor", "yushan_cluster_capacity_gpus"),
        ("fair share per tenant", "yushan_tenant_weighted_fair_share"),
        ("entitlement per tenant", "yushan_tenant_nominal_quota_gpus"),
        ("preemptions", "yushan_jobs_preempted_total"),
        ("cycle time", "yushan_scheduling_cycle_duration_seconds_bucket"),
        ("API latency", "yushan_api_request_duration_seconds_bucket"),
        ("wallet credit per tenant", "yushan_tenant_wallet_available_credits"),
        ("spend per tenant and flavor", "yushan_tenant_spend_credits_total"),
    ],
)
def test_dashboard_covers(dashboard: dict[str, Any], topic: str, metric: str) -> None:
    assert any(metric in metric_names_in(expr) for expr in _exprs(dashboard)), topic


def test_dashboard_only_queries_metrics_yushan_defines(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names_in(expr) for expr in _exprs(dashboard)))

    assert len(used) >= 15
    assert used <= defined_metric_names()


def _as_promql(expr: str) -> str:
    for variable, replacement in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, replacement)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def test_every_dashboard_query_parses_as_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    panel_exprs = [t["expr"] for p in _panels(dashboard) for t in p["targets"]]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": _as_promql(expr)}
                    for i, expr in enumerate(panel_exprs)
                ],
            }
        ]
    }
    rules_file = tmp_path / "dashboard_queries.yaml"
    rules_file.write_text(yaml.safe_dump(rules))

    result = promtool("check", "rules", str(rules_file))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(panel_exprs)} rules found" in result.stdout


def test_variable_queries_use_label_values(dashboard: dict[str, Any]) -> None:
    queries = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]

    assert queries
    for variable in queries:
        assert re.fullmatch(r"label_values\(yushan_\w+, \w+\)", variable["query"]["query"])
