"""The scheduler's loop and cache settings reach both ``yushan serve`` and ``yushan scheduler``
from ``YUSHAN_*`` variables (through ``scheduler.settings``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import server
from k8s.client import ClusterClient
from k8s.sim import EmbeddedCluster
from scheduler.settings import SchedulerSettings


def test_loop_and_cache_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("YUSHAN_CYCLE_INTERVAL_SECONDS", "20")
    monkeypatch.setenv("YUSHAN_WAKE_DEBOUNCE_SECONDS", "0.05")
    monkeypatch.setenv("YUSHAN_RESYNC_INTERVAL_SECONDS", "7200")
    monkeypatch.setenv("YUSHAN_LISTEN_FOR_JOB_CHANGES", "false")
    monkeypatch.setenv("YUSHAN_ESTIMATED_JOBS_PER_TENANT", "3")
    monkeypatch.setenv("YUSHAN_ESTIMATE_INTERVAL_SECONDS", "120")
    monkeypatch.setenv("YUSHAN_ACCRUAL_INTERVAL_SECONDS", "5")
    settings = SchedulerSettings()
    assert settings.listen_for_job_changes is False
    loop_settings = server._loop_settings(settings, None)
    assert loop_settings.interval_seconds == 20
    assert loop_settings.debounce_seconds == 0.05
    assert loop_settings.estimated_per_tenant == 3
    assert loop_settings.estimate_interval_seconds == 120
    assert loop_settings.accrual_interval_seconds == 5
    assert server._loop_settings(settings, 3.0).interval_seconds == 3.0  # --interval wins
    with EmbeddedCluster() as cluster:
        client = ClusterClient.from_kubeconfig(cluster.write_kubeconfig(tmp_path / "kc"))
        watcher = server._watcher(client, settings)
        try:
            assert watcher.resync_seconds == 7200
            assert watcher.wait_synced(10)
        finally:
            watcher.stop()
            client.close()
