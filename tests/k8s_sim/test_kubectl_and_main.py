"""kubectl against the embedded cluster, and the standalone ``python -m k8s.sim`` entry point."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from k8s.sim import EmbeddedCluster
from tests.k8s_sim.conftest import a_pod, wait_for, wait_for_phase

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"


def kubectl(kubeconfig: Path, *args: str) -> str:
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def kubeconfig(cluster: EmbeddedCluster, tmp_path: Path) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


def test_kubectl_get_nodes_as_json(kubeconfig: Path) -> None:
    nodes = json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json"))

    assert len(nodes["items"]) == 8
    assert {node["status"]["allocatable"]["nvidia.com/gpu"] for node in nodes["items"]} == {"8"}


def test_kubectl_get_pods_in_all_namespaces_and_logs(kubeconfig: Path, core: Any) -> None:
    core.create_namespaced_pod("kube-system", a_pod("foreign").on("v100-0").runs_for(1).build())
    wait_for_phase(core, "foreign", "Succeeded", namespace="kube-system")

    listing = kubectl(kubeconfig, "get", "pods", "-A")
    logs = kubectl(kubeconfig, "logs", "-n", "kube-system", "foreign")
    described = kubectl(kubeconfig, "describe", "pod", "-n", "kube-system", "foreign")

    row = next(line.split() for line in listing.splitlines() if "foreign" in line)
    assert row[:4] == ["kube-system", "foreign", "0/1", "Completed"]
    assert "container exited with code 0" in logs
    assert "Succeeded" in described


def test_kubectl_cordon_sets_unschedulable(kubeconfig: Path, core: Any) -> None:
    kubectl(kubeconfig, "cordon", "h100-3")

    assert core.read_node("h100-3").spec.unschedulable is True


def test_kubectl_table_shows_node_status(cluster: EmbeddedCluster, kubeconfig: Path) -> None:
    cluster.set_node_ready("v100-2", ready=False)
    kubectl(kubeconfig, "cordon", "h100-1")

    rows = {
        line.split()[0]: line.split()[1]
        for line in kubectl(kubeconfig, "get", "nodes").splitlines()[1:]
    }

    assert rows["v100-2"] == "NotReady"
    assert rows["h100-1"] == "Ready,SchedulingDisabled"
    assert rows["h100-0"] == "Ready"


def test_module_entry_point_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    command = [sys.executable, "-m", "k8s.sim", "--kubeconfig", str(kubeconfig)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
            wait_for(kubeconfig.exists)

            assert url in kubeconfig.read_text()
            assert httpx.get(f"{url}/api/v1/nodes").json()["kind"] == "NodeList"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
