"""promtool checks the exposition of the metrics and unit-tests the alert rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, generate_latest

import scheduler.metrics as metrics_module
from scheduler.metrics import YushanMetrics
from tests.observability.populate import populated_metrics
from tests.observability.promtool import (
    ALERT_TESTS,
    ALERTS,
    defined_metric_names,
    metric_names_in,
    promtool,
)

EXPOSITIONS: dict[str, tuple[Callable[[], tuple[bytes, str]], bytes]] = {
    # What a scheduler leader serves after a cycle.
    "populated": (lambda: populated_metrics().render(), b"yushan_tenant_pending_jobs"),
    # What a fresh process (the API, a standby scheduler) serves: families without samples.
    "fresh": (lambda: YushanMetrics(CollectorRegistry()).render(), b"yushan_build_info"),
    # The process-wide registry, with the process and platform collectors.
    "process": (metrics_module.render, b"yushan_process_cpu_seconds_total"),
}


@pytest.mark.parametrize("source", EXPOSITIONS)
def test_promtool_check_metrics_accepts_the_exposition(source: str) -> None:
    render, expected = EXPOSITIONS[source]
    payload, _ = render()

    result = promtool("check", "metrics", stdin=payload)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert expected in payload


def test_promtool_check_metrics_would_catch_a_misnamed_metric() -> None:
    registry = CollectorRegistry()
    Gauge("yushan_misnamed_total", "A gauge that looks like a counter.", registry=registry)

    result = promtool("check", "metrics", stdin=generate_latest(registry))

    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr


def test_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", str(ALERTS))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_alert_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", str(ALERT_TESTS))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _rules() -> list[dict[str, str]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_requested_alert_exists_and_is_unit_tested() -> None:
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    tested = {
        case["alertname"]
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }

    assert alerts == {
        "YushanSchedulingStalled",
        "YushanJobsPendingBeyondNorm",
        "YushanGPUsIdleWhileJobsWait",
        "YushanDispatchErrors",
        "YushanAPIHighErrorRate",
        "YushanNodeNotReady",
        "YushanWalletRunsOutWithinAWeek",
    }
    assert tested == alerts


def test_alert_rules_only_read_metrics_yushan_defines() -> None:
    used = set().union(*(metric_names_in(rule["expr"]) for rule in _rules()))

    assert len(used) >= 8
    assert used <= defined_metric_names()
