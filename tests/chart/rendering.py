"""Render charts/yushan with the real Helm SDK (helm-python) and query the resulting objects."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "yushan"
FULL_VALUES = Path(__file__).resolve().parent / "values-full.yaml"
RELEASE = "yushan"
NAMESPACE = "yushan-system"
KUBERNETES_VERSION = "1.32.0"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Rendering:
    """The objects one ``helm template`` produced, plus the values it was given."""

    values: Mapping[str, Any]
    manifests: tuple[Manifest, ...]
    notes: str

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def named(self, kind: str, name: str) -> Manifest:
        matches = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
        return matches[0]

    def kinds(self) -> set[str]:
        return {m["kind"] for m in self.manifests}


def load_values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def render(values: Mapping[str, Any]) -> Rendering:
    with helm.Chart.load(CHART) as chart:
        files = chart.render(dict(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
    notes = "".join(text for path, text in files.items() if path.endswith("NOTES.txt"))
    manifests = tuple(
        document
        for path, text in sorted(files.items())
        if path.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    )
    return Rendering(values=values, manifests=manifests, notes=notes)


def lint(values: Mapping[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = helm.lint(
        CHART,
        dict(values),
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{KUBERNETES_VERSION}",
    )
    return report


def pod_specs(rendering: Rendering) -> Iterator[tuple[str, Manifest]]:
    for deployment in rendering.of_kind("Deployment"):
        yield deployment["metadata"]["name"], deployment["spec"]["template"]["spec"]


def containers(rendering: Rendering) -> Iterator[tuple[str, Manifest]]:
    for name, spec in pod_specs(rendering):
        for container in spec["containers"]:
            yield f"{name}/{container['name']}", container
