"""The README's tour runs as written, and prints what the README says it prints.

The ```sh blocks of the README's "A tour" section run, in order, in one ``bash -e`` against a
real ``yushan serve --embedded`` started in a temporary directory on a free port (the only
change to the text: the port). That directory holds what a fresh clone's working directory
holds for the tour (``examples/``, ``.venv/``) and what ``make run`` writes (``var/``). A line
``#> text`` in a block is the README's claim about the command before it: some line of that
command's standard output starts with ``text``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARK = "@@tour-command"
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def tour_blocks(readme: str) -> list[str]:
    section = readme.split("## A tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def steps(block: str) -> list[Step]:
    """Commands (continuation lines joined) and the ``#>`` lines after each."""
    found: list[Step] = []
    pending = ""
    for line in block.splitlines():
        stripped = line.strip()
        if stripped.startswith("#>"):
            found[-1].expected.append(stripped[2:].strip())
        elif pending or (stripped and not stripped.startswith("#")):
            pending += line + "\n"
            if not stripped.endswith("\\"):
                found.append(Step(pending.rstrip("\n")))
                pending = ""
    return found


def script(all_steps: list[Step], port: int) -> str:
    lines = ["set -euo pipefail"]
    for number, step in enumerate(all_steps):
        lines.append(f"echo '{MARK} {number}'")
        lines.append(step.command.replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
    return "\n".join(lines) + "\n"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YUSHAN_", "KUBECONFIG"))}
    env["YUSHAN_PORT"] = str(port)
    binary = Path(sys.executable).parent / "yushan"
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [str(binary), "serve", "--embedded", "--time-scale", "0.05", "--interval", "0.5"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("yushan serve did not answer within 60 s")
        yield tmp_path, port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_readme_tour_runs_and_prints_what_it_says(served: tuple[Path, int]) -> None:
    workdir, port = served
    all_steps = [step for block in tour_blocks(README.read_text()) for step in steps(block)]
    assert len(all_steps) > 15
    assert any("yushan submit" in step.command for step in all_steps)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YUSHAN_", "KUBECONFIG"))}
    env["HOME"] = str(workdir)  # no config file of the developer's
    result = subprocess.run(
        ["bash", "-c", script(all_steps, port)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outputs = re.split(rf"^{MARK} \d+\n", result.stdout, flags=re.M)[1:]
    assert result.returncode == 0, (
        f"step {len(outputs) - 1} failed: {all_steps[len(outputs) - 1].command}\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    assert len(outputs) == len(all_steps)
    for step, output in zip(all_steps, outputs, strict=True):
        shown = [line.strip() for line in output.splitlines()]
        for expected in step.expected:
            expected_here = expected.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
            assert any(line.startswith(expected_here) for line in shown), (
                f"README says {step.command!r} prints {expected!r}; it printed:\n{output}"
            )


def test_the_tour_submits_as_alice_with_her_own_token() -> None:
    commands = [step.command for block in tour_blocks(README.read_text()) for step in steps(block)]
    submit = next(i for i, c in enumerate(commands) if "yushan submit" in c)
    switched = [i for i, c in enumerate(commands) if "YUSHAN_TOKEN=$ALICE_TOKEN" in c]
    assert switched
    assert switched[-1] < submit
