"""A real ``yushan serve --embedded`` process per test module, driven like a new user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class Server:
    url: str
    token: str
    workdir: Path
    process: subprocess.Popen[str]

    def env(self) -> dict[str, str]:
        return {**os.environ, "YUSHAN_URL": self.url, "YUSHAN_TOKEN": self.token}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / "yushan"), *args],
            check=False,
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "-o", "json").stdout)

    def kubectl(self, *args: str) -> Any:
        result = subprocess.run(
            [str(BIN / "kubectl"), "--kubeconfig", str(self.workdir / "var" / "kubeconfig"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(result.stdout)


@contextmanager
def serve(workdir: Path, time_scale: float = 0.05) -> Iterator[Server]:
    """``yushan serve --embedded`` in ``workdir`` on a free port, as ``make run`` starts it
    (``time_scale``: simulated pods run this fraction of their duration)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUSHAN_")}
    env["YUSHAN_PORT"] = str(port)
    process = subprocess.Popen(
        [
            str(BIN / "yushan"),
            "serve",
            "--embedded",
            "--time-scale",
            str(time_scale),
            "--interval",
            "0.2",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError("yushan serve did not answer /healthz within 60 s")
    token = (workdir / "var" / "admin-token").read_text().strip()
    yield Server(url, token, workdir, process)
    process.terminate()
    output, _ = process.communicate(timeout=30)
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("serve")) as started:
        yield started


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached")


@pytest.fixture(scope="module")
def tenant(server: Server) -> str:
    server.cli(
        "flavors", "create", "h100", "--label", "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3"
    )
    server.cli("tenants", "create", "lab-a", "--kind", "academic")
    server.cli("quota", "set", "lab-a", str(ROOT / "examples" / "quota.yaml"))
    return "lab-a"
