"""``/metrics`` names tenants: with ``YUSHAN_METRICS_TOKEN`` set it needs that bearer token, on
the API and on the scheduler's metrics server alike. Without it, it stays open (documented)."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.settings import ApiSettings
from scheduler.metrics import MetricsServer, YushanMetrics

TOKEN = "scrape-secret"


def test_api_metrics_need_the_token_when_one_is_set(sqlite_url: str) -> None:
    app = create_app(ApiSettings(database_url=sqlite_url, metrics_token=TOKEN))
    with TestClient(app) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200
        assert "yushan_" in allowed.text


def test_api_metrics_are_open_without_a_token(sqlite_url: str) -> None:
    with TestClient(create_app(ApiSettings(database_url=sqlite_url))) as client:
        assert client.get("/metrics").status_code == 200


def _get(port: int, path: str, token: str | None = None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("token", [TOKEN, None])
def test_scheduler_metrics_server_honours_the_token(token: str | None) -> None:
    server = MetricsServer(YushanMetrics(CollectorRegistry()), port=0, token=token)
    server.start()
    try:
        assert _get(server.port, "/metrics") == (401 if token else 200)
        assert _get(server.port, "/metrics", TOKEN) == 200
        assert _get(server.port, "/healthz") == 200  # probes need no token
    finally:
        server.stop()
