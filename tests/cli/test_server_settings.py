"""``yushan serve`` and ``yushan scheduler`` run the loop with every scheduler setting.

Each entry point is started for real through ``cli.main.main`` with ``YUSHAN_*`` variables set
to non-default values; the loop it builds is captured as it is constructed (before any thread,
server or cluster connection starts) and its policy and loop settings are compared with what the
variables and flags ask for. A setting dropped by either entry point, or a ``--policy`` flag that
rebuilds the policy from its name alone, fails here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cli import server
from cli.main import main
from scheduler.loop import SchedulerLoop
from scheduler.policy import Policy
from scheduler.settings import SchedulerSettings
from store import installation

ENV = {
    "YUSHAN_POLICY": "fair",
    "YUSHAN_USAGE_HALF_LIFE_SECONDS": "3600",
    "YUSHAN_USAGE_WEIGHT": "2.5",
    "YUSHAN_MIN_RUNTIME_SECONDS": "120",
    "YUSHAN_RETRY_LIMIT": "2",
    "YUSHAN_BACKOFF_BASE_SECONDS": "10",
    "YUSHAN_BACKOFF_MAX_SECONDS": "50",
    "YUSHAN_STARVATION_SECONDS": "7200",
    "YUSHAN_MAX_EVICTIONS_PER_DAY": "5",
    "YUSHAN_WITHIN_TENANT": "Never",
    "YUSHAN_RECLAIM_WITHIN_COHORT": "LowerPriority",
    "YUSHAN_PREEMPTION_COST_FACTOR": "0.5",
    "YUSHAN_CYCLE_INTERVAL_SECONDS": "7",
    "YUSHAN_FINISHED_POD_TTL_SECONDS": "99",
}
"""Every scheduler setting, each away from its default."""

TUNED: dict[str, object] = {
    "half_life_seconds": 3600.0,
    "usage_weight": 2.5,
    "min_runtime_seconds": 120,
    "retry_limit": 2,
    "backoff_base_seconds": 10.0,
    "backoff_max_seconds": 50.0,
    "starvation_seconds": 7200.0,
    "max_evictions_per_day": 5,
    "within_tenant": "Never",
    "reclaim_within_cohort": "LowerPriority",
    "preemption_cost_factor": 0.5,
}


def expected(preset: str) -> Policy:
    return replace(Policy.named(preset), **TUNED)  # type: ignore[arg-type]


def test_env_values_differ_from_the_defaults() -> None:
    """Otherwise a dropped setting would go unnoticed."""
    defaults = Policy(kind="fair", backfill=True)
    for name, value in TUNED.items():
        assert getattr(defaults, name) != value, name


class _Built(Exception):
    """Raised once the entry point constructed its loop: nothing else needs to start."""


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[SchedulerLoop]:
    """Loops constructed by ``cli.server``; everything with side effects beyond that is stubbed
    (logging set-up, migrations, cluster connections)."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("YUSHAN_DATABASE_URL", f"sqlite:///{tmp_path / 'yushan.db'}")
    monkeypatch.setenv("YUSHAN_LEADER_ELECTION", "false")
    monkeypatch.setenv("YUSHAN_BOOTSTRAP_TOKEN", "ysh_admin_test")
    monkeypatch.setattr(server, "STATE_DIR", tmp_path / "var")
    monkeypatch.setattr(server, "configure_logging", lambda *a, **k: None)
    monkeypatch.setattr(server, "upgrade", lambda *a, **k: None)
    monkeypatch.setattr(server, "prepare_database", lambda *a, **k: False)
    monkeypatch.setattr(installation, "identity", lambda *a, **k: "0" * 32)
    monkeypatch.setattr(server, "_cluster_client", lambda *a, **k: object())

    class _Client:
        @staticmethod
        def from_kubeconfig(*args: Any, **kwargs: Any) -> object:
            return object()

    monkeypatch.setattr(server, "ClusterClient", _Client)
    monkeypatch.setattr(server, "_watcher", lambda *a, **k: None)
    loops: list[SchedulerLoop] = []

    def capture(*args: Any, **kwargs: Any) -> SchedulerLoop:
        loops.append(SchedulerLoop(*args, **kwargs))
        raise _Built

    monkeypatch.setattr(server, "SchedulerLoop", capture)
    return loops


def start(argv: list[str], loops: list[SchedulerLoop]) -> SchedulerLoop:
    with pytest.raises(_Built):
        main(argv)
    [loop] = loops
    return loop


SCHEDULER = ["scheduler"]
SERVE = ["serve", "--kubeconfig", "/nonexistent/kubeconfig"]


@pytest.mark.parametrize("command", [SCHEDULER, SERVE], ids=["scheduler", "serve"])
def test_every_setting_reaches_the_loop(command: list[str], built: list[SchedulerLoop]) -> None:
    loop = start(command, built)

    assert loop.policy == expected("fair")
    assert loop.settings.interval_seconds == 7.0
    assert loop.settings.finished_pod_ttl_seconds == 99.0


@pytest.mark.parametrize("command", [SCHEDULER, SERVE], ids=["scheduler", "serve"])
@pytest.mark.parametrize("preset", ["fifo", "fair", "fair+backfill"])
def test_policy_flag_changes_the_preset_and_keeps_every_setting(
    command: list[str], preset: str, built: list[SchedulerLoop]
) -> None:
    loop = start([*command, "--policy", preset, "--interval", "3"], built)

    assert loop.policy == expected(preset)
    assert loop.settings.interval_seconds == 3.0
    assert loop.settings.finished_pod_ttl_seconds == 99.0


def test_defaults_are_the_policy_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)

    assert SchedulerSettings().scheduling_policy() == Policy.named("fair+backfill")


@pytest.mark.parametrize("value", ["0", "", "0.0"])
def test_zero_or_empty_starvation_seconds_turns_the_guard_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("YUSHAN_STARVATION_SECONDS", value)

    assert SchedulerSettings().scheduling_policy().starvation_seconds is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("YUSHAN_BACKOFF_MAX_SECONDS", "30"),  # below the default base of 60
        ("YUSHAN_WITHIN_TENANT", "Sometimes"),
        ("YUSHAN_RECLAIM_WITHIN_COHORT", "lowerpriority"),
        ("YUSHAN_MAX_EVICTIONS_PER_DAY", "0"),
        ("YUSHAN_PREEMPTION_COST_FACTOR", "-1"),
        ("YUSHAN_STARVATION_SECONDS", "-5"),
        ("YUSHAN_USAGE_HALF_LIFE_SECONDS", "0"),
    ],
)
def test_invalid_settings_fail_at_start_up(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError):
        SchedulerSettings()
