"""Starting and stopping the embedded cluster, and its kubeconfig for the official loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config

from k8s.sim import EmbeddedCluster, SimError


def test_stopped_cluster_refuses_connections_and_cannot_restart() -> None:
    cluster = EmbeddedCluster()
    cluster.start()
    url = cluster.url
    assert httpx.get(f"{url}/version").status_code == 200

    cluster.stop()
    cluster.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/version")
    with pytest.raises(SimError):
        cluster.start()


def test_url_needs_a_running_cluster() -> None:
    with pytest.raises(SimError):
        _ = EmbeddedCluster().url


def test_two_clusters_get_distinct_ephemeral_ports() -> None:
    with EmbeddedCluster() as first, EmbeddedCluster() as second:
        assert first.url != second.url
        assert first.url.startswith("http://127.0.0.1:")


def test_kubeconfig_loads_with_the_official_loader(tmp_path: Path) -> None:
    with EmbeddedCluster() as cluster:
        path = cluster.write_kubeconfig(tmp_path / "nested" / "config", context="sim")
        load: Any = config.new_client_from_config
        api_client = load(config_file=str(path), context="sim")
        try:
            nodes = client.CoreV1Api(api_client).list_node()
        finally:
            api_client.close()

    assert len(nodes.items) == 8
    assert path.stat().st_mode & 0o077 == 0
