"""``jobs hold|release|update``, ``submit --dependency``, ``tenants|flavors hold|drain|open``
and ``limits`` against the real API."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from cli.commands.queue_controls import parse_array, parse_dependency
from store.models import Job
from tests.api.builders import ApiDriver
from tests.cli.driver import CliDriver

SPEC = """\
tenant: lab-a
name: train
image: pytorch
flavor: h100
gpus: 1
max_runtime_seconds: 7200
"""


def submit(cli: CliDriver, tmp_path: Path, *extra: str) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(SPEC)
    return cli.ok("submit", str(path), *extra).stdout.strip()


def test_hold_release_and_update_a_job(
    alice: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    job_id = submit(alice, tmp_path)
    assert alice.ok("jobs", "hold", job_id).stdout.strip() == f"job {job_id} held"
    shown = alice.ok("jobs", "get", job_id).stdout
    assert "Held" in shown
    assert "jobs release to let it start" in shown
    assert platform.ok(platform.get(f"/v1/jobs/{job_id}"))["held"] is True
    alice.ok("jobs", "release", job_id)
    assert platform.ok(platform.get(f"/v1/jobs/{job_id}"))["held"] is False
    alice.ok("jobs", "update", job_id, "--name", "eval", "--priority", "low", "--time-limit", "1h")
    stored = platform.ok(platform.get(f"/v1/jobs/{job_id}"))
    assert (stored["name"], stored["priority"], stored["max_runtime_seconds"]) == (
        "eval",
        "low",
        3600,
    )


def test_raising_a_time_limit_as_a_member_exits_with_permission_denied(
    alice: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    job_id = submit(alice, tmp_path)
    result = alice.run("jobs", "update", job_id, "--time-limit", "none")
    assert result.code == 4
    assert "error: max_runtime_seconds: only a tenant admin may raise it" in result.stderr
    assert platform.ok(platform.get(f"/v1/jobs/{job_id}"))["max_runtime_seconds"] == 7200


def test_submit_with_slurm_style_dependencies(
    alice: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    first = submit(alice, tmp_path)
    second = submit(alice, tmp_path)
    third = submit(alice, tmp_path, "--dependency", f"afterok:{first}:{second},afterany:{first}")
    stored = platform.ok(platform.get(f"/v1/jobs/{third}"))
    assert stored["depends_on"] == [
        {"job": first, "condition": "succeeded"},
        {"job": second, "condition": "succeeded"},
        {"job": first, "condition": "finished"},
    ]
    assert f"{first} (succeeded)" in alice.ok("jobs", "get", third).stdout
    alice.ok("jobs", "update", third, "--no-dependency")
    assert platform.ok(platform.get(f"/v1/jobs/{third}"))["depends_on"] == []


@pytest.mark.parametrize("text", ["after:j1", "afterok", "afterok:", "j1"])
def test_bad_dependency_syntax_is_a_usage_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid dependency"):
        parse_dependency(text)


@pytest.mark.parametrize(
    ("command", "policy"), [("hold", "hold"), ("drain", "hold_and_drain"), ("open", "open")]
)
def test_tenants_and_flavors_hold_drain_open(
    admin_cli: CliDriver, platform: ApiDriver, command: str, policy: str
) -> None:
    assert admin_cli.ok("tenants", command, "lab-a").stdout.strip() == (
        f"tenant lab-a is now {policy}"
    )
    assert platform.ok(platform.get("/v1/tenants/lab-a"))["stop_policy"] == policy
    details = admin_cli.ok("tenants", "get", "lab-a").stdout.splitlines()
    assert any(line.split() == ["Stop", "policy:", policy] for line in details)
    admin_cli.ok("flavors", command, "h100")
    assert platform.ok(platform.get("/v1/flavors/h100"))["stop_policy"] == policy
    assert admin_cli.ok("flavors").table()[0]["STOP POLICY"] == policy


def test_a_member_cannot_drain_a_tenant(alice: CliDriver, platform: ApiDriver) -> None:
    assert alice.run("tenants", "drain", "lab-a").code == 4
    assert platform.ok(platform.get("/v1/tenants/lab-a"))["stop_policy"] == "open"


def test_limits_set_get_unset_and_a_refused_submission(
    admin_cli: CliDriver, alice: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    admin_cli.ok("limits", "set", "lab-a", "--max-gpus", "8", "--max-queued-jobs", "1")
    admin_cli.ok("limits", "set", "lab-a", "--user", "alice", "--max-queued-jobs", "2")
    rows = admin_cli.ok("limits", "get", "lab-a").table()
    assert rows == [
        {
            "USER": "(default)",
            "MAX GPUS": "8",
            "MAX RUNNING JOBS": "-",
            "MAX QUEUED JOBS": "1",
        },
        {
            "USER": "alice",
            "MAX GPUS": "8 (default)",
            "MAX RUNNING JOBS": "-",
            "MAX QUEUED JOBS": "2",
        },
    ]
    submit(alice, tmp_path)
    submit(alice, tmp_path)
    refused = alice.run("submit", str(tmp_path / "job.yaml"))
    assert refused.code == 9
    assert "max_queued_jobs" in refused.stderr
    admin_cli.ok("limits", "unset", "lab-a", "--user", "alice")
    assert admin_cli.ok("-o", "json", "limits", "get", "lab-a").json()["users"] == {}


def test_submit_an_array_then_list_hold_and_cancel_it(
    alice: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    array_id = submit(alice, tmp_path, "--array", "0-3%2")
    array = platform.ok(platform.get(f"/v1/arrays/{array_id}"))
    assert (array["count"], array["parallelism"]) == (4, 2)
    listed = alice.ok("jobs", "list", "--array", array_id).table()
    assert len(listed) == 4
    shown = alice.ok("arrays", "get", array_id).stdout
    assert shown.splitlines()[0] == (
        f"array {array_id} (lab-a): 4 tasks, at most 2 running; 4 queued"
    )
    alice.ok("arrays", "hold", array_id)
    assert all(t["held"] for t in platform.ok(platform.get(f"/v1/arrays/{array_id}"))["tasks"])
    alice.ok("arrays", "cancel", array_id)
    assert platform.ok(platform.get(f"/v1/arrays/{array_id}"))["statuses"] == {"cancelled": 4}


@pytest.mark.parametrize(
    ("text", "array"),
    [("0-99%10", {"count": 100, "parallelism": 10}), ("0-3", {"count": 4})],
)
def test_array_syntax(text: str, array: dict[str, int]) -> None:
    assert parse_array(text) == array


@pytest.mark.parametrize("text", ["1-10", "0-", "10", "0-9%", "a-b"])
def test_bad_array_syntax_is_a_usage_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid array"):
        parse_array(text)


def test_estimated_start_in_jobs_get_list_and_estimate(
    alice: CliDriver, platform: ApiDriver, tmp_path: Path, engine: Engine
) -> None:
    job_id = submit(alice, tmp_path)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=5)
    with engine.begin() as connection:
        connection.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(estimated_start=later, estimate_is_bound=True)
        )
    details = alice.ok("jobs", "get", job_id).stdout.splitlines()
    assert any(line.split(":", 1)[0] == "Estimated start" for line in details)
    line = next(line for line in details if line.startswith("Estimated start"))
    assert line.split(":", 1)[1].strip() == "in 2h (at the earliest)"
    (row,) = alice.ok("jobs", "list", "--start").table()
    assert row["START"] == "in 2h (at the earliest)"
    assert "START" not in alice.ok("jobs", "list").stdout
    answer = alice.ok("jobs", "estimate", job_id).stdout
    assert answer.startswith("no start can be projected")
