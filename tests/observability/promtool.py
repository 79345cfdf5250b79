"""Run the real ``promtool`` (Debian package prometheus) and the metric-name catalogue."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.observability.populate import populated_metrics

ROOT = Path(__file__).resolve().parents[2]
CHART_FILES = ROOT / "charts" / "yushan" / "files"
ALERTS = CHART_FILES / "alerts.yaml"
ALERT_TESTS = CHART_FILES / "alerts_test.yaml"
DASHBOARD = CHART_FILES / "dashboards" / "yushan.json"

METRIC_NAME = re.compile(r"\byushan_[a-zA-Z0-9_]+")


def promtool(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install -y prometheus"
    return subprocess.run(
        [binary, *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def defined_metric_names() -> set[str]:
    """Every series name Yushan exports, with histogram ``_bucket/_sum/_count`` and ``_total``."""
    return {
        sample.name
        for family in populated_metrics().registry.collect()
        for sample in family.samples
    }


def metric_names_in(expr: str) -> set[str]:
    """``yushan_*`` names an expression reads (recording rules ``yushan:...`` do not match)."""
    return set(METRIC_NAME.findall(expr))
