"""``yushan simulate --prices FILE``: spend per tenant for a what-if, in the table and JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from scheduler.simulate import run
from tests.scheduler.test_simulate_output import files, parse

PRICES = """\
prices:
  - {flavor: v100, tenant_kind: academic, gpu_hour: "3600"}
  - {flavor: v100, tenant_kind: industry, gpu_hour: 7200}
"""


def simulate_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, Any]:
    argv = files(tmp_path)
    quotas = tmp_path / "quotas.yaml"
    quotas.write_text(
        quotas.read_text().replace(
            "{name: b, cohort: root,", "{name: b, kind: industry, cohort: root,"
        )
    )
    assert run(parse([*argv, "-o", "json", *extra])) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_spend_per_tenant_follows_the_price_of_its_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "prices.yaml").write_text(PRICES)
    report = simulate_json(tmp_path, capsys, "--prices", str(tmp_path / "prices.yaml"))
    spend = report["spend"]
    assert {name: row["kind"] for name, row in spend.items()} == {"a": "academic", "b": "industry"}
    for name, per_gpu_second in (("a", 1), ("b", 2)):
        row = spend[name]
        seconds = Decimal(str(row["gpu_hours"])) * 3600
        assert abs(Decimal(row["cost"]) - per_gpu_second * seconds) < Decimal("0.01"), row
        assert Decimal(row["net"]) == Decimal(row["cost"]) - Decimal(row["credited"])
        assert row["gpu_hours"] > 0
    assert report["spend"]["a"]["gpu_hours"] * 3600 == pytest.approx(
        report["tenants"]["a"]["gpu_share"] * sum(r["gpu_hours"] * 3600 for r in spend.values())
    )


def test_without_prices_there_is_no_spend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate_json(tmp_path, capsys)["spend"] is None


def test_a_bad_price_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "prices.yaml").write_text(
        "prices:\n  - {flavor: v100, tenant_kind: army, gpu_hour: 1}\n"
    )
    argv = [*files(tmp_path), "--prices", str(tmp_path / "prices.yaml")]
    assert run(parse(argv)) == 2
    assert "tenant_kind" in capsys.readouterr().err
