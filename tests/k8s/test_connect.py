"""Ways of connecting: kubeconfig path, $KUBECONFIG, context, in-cluster; line streaming."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import urllib3

from k8s.client import ClusterClient
from k8s.errors import ClusterError
from k8s.sim import EmbeddedCluster
from k8s.transport import iter_lines


def test_kubeconfig_from_path_and_context(embedded: EmbeddedCluster, tmp_path: Path) -> None:
    path = embedded.write_kubeconfig(tmp_path / "config", context="lab")
    with ClusterClient.from_kubeconfig(path, context="lab") as client:
        assert client.server_version().startswith("v1.")


def test_kubeconfig_from_the_environment(
    embedded: EmbeddedCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(embedded.write_kubeconfig(tmp_path / "config")))
    with ClusterClient.from_kubeconfig() as client:
        assert len(client.list_nodes()) == 8


def test_an_unknown_context_is_a_cluster_error(embedded: EmbeddedCluster, tmp_path: Path) -> None:
    path = embedded.write_kubeconfig(tmp_path / "config")
    with pytest.raises(ClusterError, match="cannot load kubeconfig"):
        ClusterClient.from_kubeconfig(path, context="nope")


def test_a_missing_kubeconfig_is_a_cluster_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="cannot load kubeconfig"):
        ClusterClient.from_kubeconfig(tmp_path / "absent")


def test_in_cluster_config_outside_a_cluster_is_a_cluster_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClusterError, match="not running inside a cluster"):
        ClusterClient.in_cluster()


def test_an_api_client_can_be_adopted(embedded: EmbeddedCluster) -> None:
    with ClusterClient.from_api_client(embedded.api_client()) as client:
        assert {n.flavor for n in client.list_nodes()} == {"h100", "v100"}


class Trickle(io.RawIOBase):
    """A socket-like stream that hands out at most three bytes per read."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        piece, self.data = self.data[:3], self.data[3:]
        buffer[: len(piece)] = piece
        return len(piece)


def streaming(body: bytes) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(body=io.BufferedReader(Trickle(body), 3), preload_content=False)


@pytest.mark.parametrize(
    ("body", "keep_blank", "lines"),
    [
        (b'{"a": 1}\n{"b": 2}\n', False, [b'{"a": 1}', b'{"b": 2}']),
        (b"first\n\nthird", True, [b"first", b"", b"third"]),
        (b"first\n\nthird\n", False, [b"first", b"third"]),
        (b"", False, []),
    ],
)
def test_lines_are_split_across_chunks(body: bytes, keep_blank: bool, lines: list[bytes]) -> None:
    assert list(iter_lines(streaming(body), keep_blank=keep_blank)) == lines
