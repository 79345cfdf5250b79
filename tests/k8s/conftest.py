"""Cluster fixtures for the adapter's tests.

Contract tests take ``kubeconfig``: an embedded cluster by default, or the real cluster named by
``YUSHAN_TEST_KUBECONFIG`` (same tests, unchanged). Fault tests need to inject faults and
remove nodes, which only the embedded cluster can do, so they take ``embedded`` — a fresh cluster
per test — and always run against it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8s.client import ClientOptions, ClusterClient
from k8s.errors import RetryPolicy
from k8s.sim import EmbeddedCluster
from k8s.transport import TransportOptions

TIME_SCALE = 0.01
FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.2, deadline=5.0)
TEST_OPTIONS = ClientOptions(transport=TransportOptions(retry=FAST_RETRY), parallelism=8)


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    real = os.environ.get("YUSHAN_TEST_KUBECONFIG")
    if real:
        yield Path(real)
        return
    with EmbeddedCluster(time_scale=TIME_SCALE) as cluster:
        yield cluster.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture
def client(kubeconfig: Path) -> Iterator[ClusterClient]:
    with ClusterClient.from_kubeconfig(kubeconfig, options=TEST_OPTIONS) as cluster_client:
        yield cluster_client


@pytest.fixture
def embedded() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(time_scale=TIME_SCALE) as cluster:
        yield cluster


@pytest.fixture
def embedded_client(embedded: EmbeddedCluster, tmp_path: Path) -> Iterator[ClusterClient]:
    path = embedded.write_kubeconfig(tmp_path / "config")
    with ClusterClient.from_kubeconfig(path, options=TEST_OPTIONS) as cluster_client:
        yield cluster_client
