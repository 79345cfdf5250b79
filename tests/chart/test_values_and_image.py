"""Every chart value is documented, and the Dockerfile builds the image the chart expects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.chart.rendering import CHART, ROOT


def _leaf_keys(node: yaml.Node | None, path: str = "") -> Iterator[tuple[str, yaml.Node]]:
    """(dotted path, key node) of every key whose value is not a non-empty mapping."""
    assert isinstance(node, yaml.MappingNode)
    for key, value in node.value:
        dotted = f"{path}.{key.value}" if path else key.value
        if isinstance(value, yaml.MappingNode) and value.value:
            yield from _leaf_keys(value, dotted)
        else:
            yield dotted, key


def undocumented_values(text: str) -> list[str]:
    """Leaf keys of a values file without a ``#`` comment on the line right above them."""
    root = yaml.compose(text)
    lines = text.splitlines()
    return [
        dotted
        for dotted, key in _leaf_keys(root)
        if key.start_mark.line == 0 or not lines[key.start_mark.line - 1].lstrip().startswith("#")
    ]


def test_every_value_is_documented() -> None:
    text = (CHART / "values.yaml").read_text()

    assert len(list(_leaf_keys(yaml.compose(text)))) > 40
    assert undocumented_values(text) == []


@pytest.mark.parametrize(
    ("text", "undocumented"),
    [
        ("# a\na: 1\n", []),
        ("a: 1\n", ["a"]),
        ("# group\ng:\n  # x\n  x: 1\n  y: []\n", ["g.y"]),
        ("# group\ng:\n  # empty maps are leaves\n  m: {}\n", []),
    ],
)
def test_undocumented_values_detects_missing_comments(text: str, undocumented: list[str]) -> None:
    assert undocumented_values(text) == undocumented


# --- Dockerfile -----------------------------------------------------------------------------

DOCKERFILE = ROOT / "Dockerfile"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
        for parts in [line.strip().split(None, 1)]
    ]


def _stages(path: Path) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(path):
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_dockerfile_is_multi_stage_and_copies_only_the_venv() -> None:
    stages = _stages(DOCKERFILE)
    final = stages[-1]
    copies = [args for op, args in final if op == "COPY"]

    assert len(stages) >= 2
    assert stages[0][0][1].endswith("AS builder")
    assert copies == ["--from=builder /opt/yushan /opt/yushan"]


def test_dockerfile_installs_the_locked_dependencies_with_their_hashes() -> None:
    builder = _stages(DOCKERFILE)[0]
    runs = " ".join(args for op, args in builder if op == "RUN")
    copies = " ".join(args for op, args in builder if op == "COPY")
    assert "uv.lock" in copies
    assert "uv export --frozen --no-dev" in runs
    assert "--require-hashes --no-deps -r /tmp/requirements.txt" in runs
    assert "pip install --no-deps /wheels/yushan-" in runs  # nothing resolved past the lock
    makefile = (ROOT / "Makefile").read_text()
    version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert version
    assert f"ARG UV_VERSION={version.group(1)}" in DOCKERFILE.read_text()


def test_dockerfile_final_stage_runs_as_a_numeric_non_root_user() -> None:
    final = _stages(DOCKERFILE)[-1]
    users = [args for op, args in final if op == "USER"]

    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit()
    assert int(uid) >= 10000
    assert gid in ("", uid)


def test_dockerfile_pins_base_images_without_latest() -> None:
    instructions = _instructions(DOCKERFILE)
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    bases = [a.split()[0] for op, a in instructions if op == "FROM"]
    resolved = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base) for base in bases]

    assert resolved
    for image in resolved:
        assert ":" in image, image
        assert not image.endswith(":latest"), image
        assert image.startswith("python:3.11"), image


def test_dockerfile_final_stage_has_no_build_tools() -> None:
    final = _stages(DOCKERFILE)[-1]
    runs = " ".join(args for op, args in final if op == "RUN")

    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in runs


def test_dockerignore_keeps_secrets_and_the_venv_out_of_the_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()

    for entry in (".git", ".venv", "tests", "charts"):
        assert entry in ignored
