"""``yushan serve --embedded`` as a new user meets it: a real process, real HTTP, the CLI, kubectl.

This is the acceptance path of the README: start the control plane, create a flavor, a tenant
with quota, submit a 2-worker job with 4 GPUs each, watch it run on two pods of the right flavor
(seen with kubectl), a failing job ends ``failed`` with its exit code, cancel removes the pods,
and ``/metrics`` passes ``promtool check metrics``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.xdist_group("serve")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUSHAN_")}
    env["YUSHAN_PORT"] = str(port)
    process = subprocess.Popen(
        [str(BIN / "yushan"), "serve", "--embedded", "--time-scale", "0.05", "--interval", "0.2"],
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


def _submit(server: Server, tmp_path: Path, **spec: Any) -> str:
    body = {"tenant": "lab-a", "name": "e2e", "image": "pytorch", "flavor": "h100", **spec}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(body))
    return server.cli("submit", str(path)).stdout.strip()


def test_two_worker_job_runs_on_two_bound_pods_and_succeeds(
    server: Server, tenant: str, tmp_path: Path
) -> None:
    job_id = _submit(
        server,
        tmp_path,
        gpus=4,
        workers=2,
        annotations={"sim.yushan.io/duration-seconds": "200"},
    )
    wait_for(lambda: server.cli_json("jobs", "get", job_id)["status"] in ("running", "succeeded"))
    pods = server.kubectl(
        "get", "pods", "-n", "yushan-lab-a", "-l", f"yushan.io/job={job_id}", "-o", "json"
    )
    assert len(pods["items"]) == 2
    nodes = server.kubectl("get", "nodes", "-o", "json")["items"]
    h100 = {
        n["metadata"]["name"]
        for n in nodes
        if n["metadata"]["labels"].get("nvidia.com/gpu.product") == "NVIDIA-H100-80GB-HBM3"
    }
    for pod in pods["items"]:
        assert pod["spec"]["nodeName"] in h100
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    wait_for(lambda: server.cli_json("jobs", "get", job_id)["status"] == "succeeded", 60)
    events = server.cli_json("jobs", "events", job_id)
    assert [e["to_status"] for e in events] == ["queued", "admitted", "running", "succeeded"]
    logs = server.cli("logs", job_id, "--worker", "1").stdout
    assert "exited with code 0" in logs


def test_failing_job_ends_failed_with_exit_code(
    server: Server, tenant: str, tmp_path: Path
) -> None:
    job_id = _submit(
        server,
        tmp_path,
        gpus=1,
        annotations={"sim.yushan.io/duration-seconds": "20", "sim.yushan.io/exit-code": "7"},
    )
    wait_for(lambda: server.cli_json("jobs", "get", job_id)["status"] == "failed")
    assert server.cli_json("jobs", "get", job_id)["exit_code"] == 7


def test_cancel_removes_pods(server: Server, tenant: str, tmp_path: Path) -> None:
    job_id = _submit(
        server, tmp_path, gpus=2, annotations={"sim.yushan.io/duration-seconds": "100000"}
    )
    wait_for(lambda: server.cli_json("jobs", "get", job_id)["status"] == "running")
    server.cli("jobs", "cancel", job_id)

    def gone() -> bool:
        pods = server.kubectl("get", "pods", "-A", "-l", f"yushan.io/job={job_id}", "-o", "json")
        return not pods["items"]

    wait_for(gone)
    assert server.cli_json("jobs", "get", job_id)["status"] == "cancelled"


def test_metrics_pass_promtool(server: Server, tenant: str) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (Debian package prometheus; .ci/run installs it)"
    payload = httpx.get(f"{server.url}/metrics").text
    assert "yushan_build_info" in payload
    check = subprocess.run(
        [promtool, "check", "metrics"], check=False, input=payload, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
