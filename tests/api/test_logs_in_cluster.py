"""Under Helm the API reads job logs through its service account (no kubeconfig is set)."""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app
from api.settings import ApiSettings
from k8s.client import ClusterClient
from k8s.errors import ClusterError


class _Sentinel:
    pass


def test_in_a_pod_the_api_uses_the_service_account(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    sentinel = _Sentinel()
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setattr(ClusterClient, "in_cluster", classmethod(lambda cls, *a: sentinel))
    app = create_app(ApiSettings(database_url=sqlite_url))
    assert app.state.cluster_client is sentinel


def test_outside_a_cluster_there_is_no_client_and_logs_say_why(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert create_app(ApiSettings(database_url=sqlite_url)).state.cluster_client is None


def test_a_broken_service_account_does_not_stop_the_api(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    def refuse(cls: Any, *args: Any) -> ClusterClient:
        raise ClusterError("no token")

    monkeypatch.setattr(ClusterClient, "in_cluster", classmethod(refuse))
    app = create_app(ApiSettings(database_url=sqlite_url, in_cluster=True))
    assert app.state.cluster_client is None
