"""The chart's ConfigMap carries every scheduler setting, and what it renders is what
``yushan scheduler`` turns into its policy: chart defaults equal the code's defaults, and values
set in the chart reach the Policy."""

from __future__ import annotations

import pytest

from scheduler.policy import Policy
from scheduler.settings import SchedulerSettings
from tests.chart.rendering import FULL_VALUES, load_values, render

POLICY_SETTINGS = (
    "YUSHAN_POLICY",
    "YUSHAN_USAGE_HALF_LIFE_SECONDS",
    "YUSHAN_USAGE_WEIGHT",
    "YUSHAN_MIN_RUNTIME_SECONDS",
    "YUSHAN_RETRY_LIMIT",
    "YUSHAN_BACKOFF_BASE_SECONDS",
    "YUSHAN_BACKOFF_MAX_SECONDS",
    "YUSHAN_STARVATION_SECONDS",
    "YUSHAN_MAX_EVICTIONS_PER_DAY",
    "YUSHAN_WITHIN_TENANT",
    "YUSHAN_RECLAIM_WITHIN_COHORT",
    "YUSHAN_PREEMPTION_COST_FACTOR",
)


def configmap(values_file: str) -> dict[str, str]:
    values = load_values(FULL_VALUES) if values_file == "full" else {}
    data: dict[str, str] = render(values).named("ConfigMap", "yushan")["data"]
    return data


def settings_from(data: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> SchedulerSettings:
    for name, value in data.items():
        monkeypatch.setenv(name, value)
    return SchedulerSettings()


def test_every_policy_setting_is_in_the_configmap() -> None:
    data = configmap("default")

    assert set(POLICY_SETTINGS) <= set(data)


def test_chart_defaults_are_the_schedulers_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(configmap("default"), monkeypatch)

    assert settings.scheduling_policy() == Policy.named("fair+backfill")
    assert settings.finished_pod_ttl_seconds == 86400


def test_chart_values_reach_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(configmap("full"), monkeypatch)

    assert settings.scheduling_policy() == Policy(
        kind="fair",
        backfill=False,
        half_life_seconds=172800,
        usage_weight=0.5,
        min_runtime_seconds=900,
        retry_limit=4,
        backoff_base_seconds=30,
        backoff_max_seconds=1800,
        starvation_seconds=None,
        max_evictions_per_day=2,
        within_tenant="Never",
        reclaim_within_cohort="LowerPriority",
        preemption_cost_factor=2.5,
    )
    assert settings.finished_pod_ttl_seconds == 3600
