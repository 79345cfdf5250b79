"""``yushan serve --embedded`` as a new user meets it: a real process, real HTTP, the CLI, kubectl.

This is the acceptance path of the README: start the control plane, create a flavor, a tenant
with quota, submit a 2-worker job with 4 GPUs each, watch it run on two pods of the right flavor
(seen with kubectl), a failing job ends ``failed`` with its exit code, cancel removes the pods,
and ``/metrics`` passes ``promtool check metrics``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, wait_for

pytestmark = pytest.mark.xdist_group("serve")


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
