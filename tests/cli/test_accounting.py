"""``prices``, ``wallet`` and ``usage`` against the real API: the report and the CSV agree
with the ledger, the statement's total equals the wallet's charges, 402 is exit code 10."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from store import jobs, ledger
from store.db import session_factory, transaction
from store.jobstates import JobStatus
from tests.api.builders import ApiDriver
from tests.cli.driver import CliDriver

PRICES = """\
effective_from: 2026-01-01T00:00:00Z
prices:
  - {flavor: h100, tenant_kind: academic, gpu_hour: "82"}
"""
SPEC = "tenant: lab-a\nname: train\nimage: pytorch\nflavor: h100\ngpus: 1\n"
T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC).timestamp()


def run_job(engine: Engine, job_id: str, seconds: float) -> None:
    """The job runs ``seconds`` from T0, accrued as the scheduler loop would."""
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        job.placement = ["n0"]
        began = datetime.fromtimestamp(T0, UTC)
        jobs.transition(session, job, JobStatus.ADMITTED, "Admitted", at=began)
        jobs.transition(session, job, JobStatus.RUNNING, "Running", at=began)
        ledger.accrue(session, [ledger.Attempt(job, 0)], T0)
    with transaction(sessions) as session:
        job = jobs.get(session, job_id)
        ended = datetime.fromtimestamp(T0 + seconds, UTC)
        jobs.transition(session, job, JobStatus.SUCCEEDED, "Succeeded", at=ended)
        ledger.accrue(session, [ledger.Attempt(job, 0)], T0 + seconds)


def test_prices_wallet_report_and_statement(
    admin_cli: CliDriver, alice: CliDriver, platform: ApiDriver, tmp_path: Path, engine: Engine
) -> None:
    (tmp_path / "prices.yaml").write_text(PRICES)
    listed = admin_cli.ok("prices", "set", str(tmp_path / "prices.yaml")).table()
    assert [(r["FLAVOR"], r["KIND"], r["GPU-HOUR"]) for r in listed] == [
        ("h100", "academic", "82.000")
    ]
    admin_cli.ok("wallet", "topup", "lab-a", "100", "--note", "grant")
    (tmp_path / "job.yaml").write_text(SPEC)
    first = alice.ok("submit", str(tmp_path / "job.yaml")).stdout.strip()
    second = alice.ok("submit", str(tmp_path / "job.yaml")).stdout.strip()
    run_job(engine, first, 189)
    run_job(engine, second, 3600)
    assert "Cost:" in alice.ok("jobs", "get", first).stdout
    assert "4.305 credits so far" in alice.ok("jobs", "get", first).stdout

    period = ("--from", "2026-11-01T00:00:00Z", "--to", "2026-12-01T00:00:00Z")
    table = alice.ok("usage", "report", *period, "--by", "tenant,user").table()
    assert [(r["TENANT"], r["USER"], r["GPU-HOURS"], r["COST"]) for r in table] == [
        ("lab-a", "alice", "1.052", "86.305"),
        ("TOTAL", "-", "1.052", "86.305"),
    ]
    text = alice.ok("usage", "report", *period, "--by", "user", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["user"], r["gpu_seconds"], r["cost"]) for r in rows] == [
        ("alice", "3789.0", "86.305")
    ]

    statement = alice.ok("usage", "statement", "lab-a", "--month", "2026-11", "-o", "json").json()
    assert [line["cost"] for line in statement["lines"]] == ["4.305", "82.000"]
    assert statement["net"] == statement["wallet_charges"] == "86.305"
    human = alice.ok("usage", "statement", "lab-a", "--month", "2026-11").stdout
    assert "wallet charges this month: 86.305" in human

    wallet = alice.ok("wallet", "show", "lab-a", "-o", "json").json()
    assert wallet["balance"] == "13.695"
    history = admin_cli.ok("wallet", "transactions", "lab-a").table()
    assert [r["KIND"] for r in history] == ["charge", "charge", "topup"]

    admin_cli.ok("wallet", "adjust", "lab-a", "-13.695")
    refused = alice.run("submit", str(tmp_path / "job.yaml"))
    assert refused.code == 10
    assert "no credit left" in refused.stderr, refused.stderr


def test_a_cohorts_weights_can_follow_allocations(
    admin_cli: CliDriver, platform: ApiDriver
) -> None:
    shown = admin_cli.ok("cohorts", "update", "academic", "--weights-from-allocation").stdout
    assert "weights follow their allocations" in shown
    assert platform.ok(platform.get("/v1/cohorts/academic"))["weights_from_allocation"] is True
    admin_cli.ok("cohorts", "update", "academic", "--no-weights-from-allocation")
    assert platform.ok(platform.get("/v1/cohorts/academic"))["weights_from_allocation"] is False
