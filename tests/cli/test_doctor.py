"""``yushan doctor`` with the CLI's own configuration: one line per check, the fix on failure.

The happy path against a real ``yushan serve --embedded`` is the README tour
(``tests/test_readme_tour.py``); here the in-process API and an embedded cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8s.sim import EmbeddedCluster
from tests.api.builders import ApiDriver
from tests.cli.driver import CliDriver


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    with EmbeddedCluster() as cluster:
        yield cluster.write_kubeconfig(tmp_path / "kubeconfig")


def lines(stdout: str) -> dict[str, str]:
    """``{check name: the rest of its line}``; ``ok``/``FAIL`` kept at the front."""
    out = {}
    for line in stdout.splitlines():
        match = re.match(r"(ok|FAIL)\s+(.+?)\s{2,}(.*)$", line)
        assert match, line
        verdict, name, rest = match.groups()
        out[name] = f"{verdict} {rest}"
    return out


def test_no_scheduler_yet_and_a_flavor_without_nodes_fail_with_their_fix(
    admin_cli: CliDriver, platform: ApiDriver, kubeconfig: Path
) -> None:
    result = admin_cli.run("doctor", "--kubeconfig", str(kubeconfig))
    assert result.code == 1
    checks = lines(result.stdout)
    assert list(checks) == [
        "server", "token", "database", "scheduler", "flavors", "cluster", "rbac", "gpu nodes"
    ]  # fmt: skip
    assert checks["token"] == "ok accepted: admin (platform admin)"
    assert checks["database"] == "ok answers and has the newest schema"
    assert checks["scheduler"].startswith("FAIL no scheduler has completed a cycle  -> fix: ")
    # No scheduler reported nodes to this API: the h100 flavor matches none.
    assert checks["flavors"].startswith("FAIL no node matches h100  -> fix: label the GPU nodes")
    assert checks["cluster"].startswith("ok API server")
    assert checks["rbac"].startswith("ok ")
    assert "writes in yushan-lab-a, yushan-lab-b" in checks["rbac"]
    assert checks["gpu nodes"].startswith("ok 8 GPU nodes")


def test_a_missing_token_stops_at_the_token_check(admin_cli: CliDriver, kubeconfig: Path) -> None:
    result = admin_cli.as_token(None).run("doctor", "--kubeconfig", str(kubeconfig))
    assert result.code == 1
    checks = lines(result.stdout)
    assert checks["token"].startswith("FAIL no API token  -> fix: ")
    assert "-> fix: set YUSHAN_TOKEN or run 'yushan login'" in checks["token"]
    assert "scheduler" not in checks


def test_an_unreachable_server_and_no_kubeconfig(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["--url", "http://127.0.0.1:9", "doctor"]) == 1
    checks = lines(capsys.readouterr().out)
    assert list(checks) == ["server", "cluster"]
    assert checks["server"].startswith("FAIL cannot reach Yushan at http://127.0.0.1:9")
    assert "-> fix: start it (make run)" in checks["server"]
    assert checks["cluster"].startswith("FAIL no kubeconfig")
