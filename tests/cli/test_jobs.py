"""``submit`` and ``jobs …`` against the real API: what people see and what scripts get."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.builders import ApiDriver
from tests.cli.driver import CliDriver, mock_http

JOB_YAML = """\
tenant: lab-a
name: resnet
image: nvcr.io/nvidia/pytorch:24.05-py3
command: [python, train.py]
args: ["--epochs", "3"]
env:
  RUN_DATE: 2026-11-26
flavor: h100
gpus: 2
workers: 2
priority: high
"""


def write_spec(tmp_path: Path, text: str = JOB_YAML) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return str(path)


def submit(cli: CliDriver, tmp_path: Path, *extra: str) -> str:
    return cli.ok("submit", write_spec(tmp_path), *extra).stdout.strip()


def test_submit_yaml_prints_the_id_of_a_stored_job(
    alice: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    job_id = submit(alice, tmp_path)
    stored = platform.ok(platform.get(f"/v1/jobs/{job_id}"))
    assert (stored["name"], stored["user"], stored["gpus"], stored["workers"]) == (
        "resnet",
        "alice",
        2,
        2,
    )
    assert stored["args"] == ["--epochs", "3"]
    assert stored["env"] == {"RUN_DATE": "2026-11-26"}  # an unquoted YAML date stays text
    assert stored["priority"] == "high"


def test_submit_from_stdin_with_overrides_and_json_output(
    alice: CliDriver, platform: ApiDriver
) -> None:
    spec = '{"tenant": "lab-b", "name": "x", "image": "busybox", "flavor": "h100", "gpus": 1}'
    platform.ok(
        platform.post("/v1/tenants/lab-b/members", {"user": "alice", "role": "member"}), 201
    )
    job = alice.ok(
        "submit", "-", "--tenant", "lab-a", "--name", "renamed", "-o", "json", stdin=spec
    )
    assert (job.json()["tenant"], job.json()["name"]) == ("lab-a", "renamed")


def test_submit_with_idempotency_key_returns_the_same_job(alice: CliDriver, tmp_path: Path) -> None:
    first = submit(alice, tmp_path, "--idempotency-key", "run-1")
    again = submit(alice, tmp_path, "--idempotency-key", "run-1")
    other = submit(alice, tmp_path)
    assert first == again != other


def test_jobs_list_table_and_json(alice: CliDriver, tmp_path: Path) -> None:
    job_id = submit(alice, tmp_path)
    (row,) = alice.ok("jobs", "list").table()
    assert row["ID"] == job_id
    assert (row["TENANT"], row["USER"], row["NAME"], row["STATUS"]) == (
        "lab-a",
        "alice",
        "resnet",
        "queued",
    )
    assert (row["GPUS"], row["FLAVOR"]) == ("4", "h100")
    listed = alice.ok("jobs", "list", "-o", "json").json()
    assert [job["id"] for job in listed] == [job_id]


def test_jobs_list_filters_by_status(alice: CliDriver, tmp_path: Path) -> None:
    keep = submit(alice, tmp_path)
    gone = submit(alice, tmp_path)
    alice.ok("jobs", "cancel", gone)
    queued = alice.ok("jobs", "list", "--status", "queued", "-o", "json").json()
    cancelled = alice.ok("-o", "yaml", "jobs", "list", "--status", "cancelled").yaml()
    assert [j["id"] for j in queued] == [keep]
    assert [j["id"] for j in cancelled] == [gone]


def test_jobs_list_pages_and_all_follows_every_cursor(alice: CliDriver, tmp_path: Path) -> None:
    ids = [submit(alice, tmp_path) for _ in range(5)]
    first_page = alice.ok("jobs", "list", "--limit", "2", "-o", "json")
    assert [j["id"] for j in first_page.json()] == ids[::-1][:2]
    assert "--cursor" in first_page.stderr
    everything = alice.ok("jobs", "list", "--all", "--limit", "2", "-o", "json").json()
    assert [j["id"] for j in everything] == ids[::-1]


def test_jobs_get_says_why_the_job_waits(alice: CliDriver, tmp_path: Path) -> None:
    job_id = submit(alice, tmp_path)
    shown = alice.ok("jobs", "get", job_id).stdout
    lines = shown.splitlines()
    assert lines[0].split() == ["Job:", job_id, "(resnet)"]
    assert lines[2].split() == ["Status:", "queued"]
    assert [line.split(":")[0] for line in lines[3:6]] == ["Reason", "Message", "Queue position"]
    assert "2 per worker x 2 workers = 4" in shown
    assert alice.ok("jobs", "get", job_id, "-o", "yaml").yaml()["id"] == job_id


def test_cancel_then_events_show_the_history(alice: CliDriver, tmp_path: Path) -> None:
    job_id = submit(alice, tmp_path)
    assert alice.ok("jobs", "cancel", job_id).stdout.strip() == f"job {job_id} cancelled"
    rows = alice.ok("jobs", "events", job_id).table()
    assert [(row["FROM"], row["TO"]) for row in rows] == [("-", "queued"), ("queued", "cancelled")]
    assert all(row["WHEN"] == "now" or row["WHEN"].endswith(" ago") for row in rows)
    events = alice.ok("jobs", "events", job_id, "-o", "json").json()
    assert [e["to_status"] for e in events] == ["queued", "cancelled"]


def test_watch_of_a_cancelled_job_exits_1(alice: CliDriver, tmp_path: Path) -> None:
    job_id = submit(alice, tmp_path)
    alice.ok("jobs", "cancel", job_id)
    watched = alice.run("jobs", "watch", job_id, "--interval", "0")
    assert watched.code == 1
    assert watched.stdout.split()[:2] == [job_id, "cancelled"]


def test_logs_of_a_job_that_has_not_started_is_a_conflict(alice: CliDriver, tmp_path: Path) -> None:
    job_id = submit(alice, tmp_path)
    result = alice.run("logs", job_id)
    assert result.code == 6
    assert "has not started yet" in result.stderr


# -- against a scripted server ------------------------------------------------------------------


def a_job(status: str, **fields: object) -> dict[str, object]:
    return {"id": "j-1", "status": status, "reason": "", "message": "", **fields}


def test_watch_follows_the_job_until_it_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    states = iter(
        [
            a_job("queued", reason="QuotaExhausted", message="lab-a uses 16/16", queue_position=2),
            a_job("queued", reason="QuotaExhausted", message="lab-a uses 16/16", queue_position=2),
            a_job("running"),
            a_job("succeeded", exit_code=0),
        ]
    )
    cli = CliDriver(mock_http(lambda _: httpx.Response(200, json=next(states))), capsys, "t")
    watched = cli.run("jobs", "watch", "j-1", "--interval", "0")
    assert watched.code == 0
    assert watched.stdout.splitlines() == [
        "j-1  queued  #2 in queue  QuotaExhausted: lab-a uses 16/16",
        "j-1  running",
        "j-1  succeeded  exit code 0",
    ]


def fake_job_server(statuses: list[str], seen: list[httpx.URL]) -> httpx.Client:
    """``GET /v1/jobs/j-1`` answers each status in turn (the last one forever); logs stream."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.path.endswith("/logs"):
            text = "step 1\nstep 2\n"
            return httpx.Response(200, text=text, headers={"content-type": "text/plain"})
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        reason = {"queued": "QuotaExceeded"}.get(status, "")
        body = {"id": "j-1", "status": status, "reason": reason, "message": "", "exit_code": None}
        return httpx.Response(200, json=body)

    return mock_http(answer)


def test_logs_stream_the_worker_with_follow(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[httpx.URL] = []
    cli = CliDriver(fake_job_server(["running"], seen), capsys, "t")
    for command in (["logs"], ["jobs", "logs"]):
        result = cli.run(*command, "j-1", "--worker", "1", "--follow")
        assert (result.code, result.stdout) == (0, "step 1\nstep 2\n")
    assert [(u.path, dict(u.params)) for u in seen] == [
        ("/v1/jobs/j-1", {}),
        ("/v1/jobs/j-1/logs", {"worker": "1", "follow": "true"}),
    ] * 2


def test_logs_follow_waits_for_a_queued_job_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[httpx.URL] = []
    cli = CliDriver(fake_job_server(["queued", "queued", "admitted", "running"], seen), capsys, "t")
    result = cli.run("logs", "j-1", "--follow", "--interval", "0")
    assert (result.code, result.stdout) == (0, "step 1\nstep 2\n")
    assert [u.path for u in seen] == ["/v1/jobs/j-1"] * 4 + ["/v1/jobs/j-1/logs"]
    assert result.stderr.splitlines() == [  # each state once, not once per poll
        "waiting for the job to start: j-1  queued  QuotaExceeded",
        "waiting for the job to start: j-1  admitted",
    ]


def test_submit_flags_override_the_file(
    alice: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path)
    flags = ["--gpus", "1", "--workers", "1", "--image", "busybox:1", "--time", "90m"]
    job_id = alice.ok("submit", spec, *flags, "--name", "short").stdout.strip()
    job = alice.ok("jobs", "get", job_id, "-o", "json").json()
    assert (job["gpus"], job["workers"], job["image"], job["name"]) == (1, 1, "busybox:1", "short")
    assert job["max_runtime_seconds"] == 5400
    assert "Time limit:       1h 30m" in alice.ok("jobs", "get", job_id).stdout
    platform.post(f"/v1/jobs/{job_id}/cancel")
    waited = alice.run("jobs", "watch", job_id, "--interval", "0")
    assert waited.code == 1
    assert "  cancelled" in waited.stdout


def test_submit_wait_exits_with_the_job_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.method == "POST":
            return httpx.Response(201, json={"id": "j-1", "status": "queued"})
        status = "succeeded" if len(seen) > 2 else "running"
        code = 0 if status == "succeeded" else None
        return httpx.Response(200, json={"id": "j-1", "status": status, "exit_code": code})

    cli = CliDriver(mock_http(answer), capsys, "t")
    result = cli.run("submit", "-", "--wait", "--interval", "0", stdin='{"tenant": "lab-a"}')
    assert result.code == 0
    assert result.stderr.strip() == "submitted j-1"
    assert result.stdout.splitlines() == ["j-1  running", "j-1  succeeded  exit code 0"]


def test_jobs_list_me_filters_to_the_callers_jobs(
    alice: CliDriver, admin_cli: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    mine = submit(alice, tmp_path)
    theirs = submit(admin_cli, tmp_path)
    assert [row["ID"] for row in alice.ok("jobs", "list", "--me").table()] == [mine]
    assert [row["ID"] for row in admin_cli.ok("jobs", "list", "--me").table()] == [theirs]


def test_checkpoint_interval_from_the_job_file_shows_in_jobs_get(
    alice: CliDriver, tmp_path: Path
) -> None:
    checkpointing = submit_spec(alice, tmp_path, JOB_YAML + "checkpoint_interval_seconds: 1800\n")
    plain = submit(alice, tmp_path)

    shown = alice.ok("jobs", "get", checkpointing).stdout
    assert "Checkpoints:" in shown
    assert "every 30m (an evicted job" in shown
    assert "restarts from the beginning" in alice.ok("jobs", "get", plain).stdout
    as_json = alice.ok("jobs", "get", checkpointing, "-o", "json").json()
    assert as_json["checkpoint_interval_seconds"] == 1800


def submit_spec(cli: CliDriver, tmp_path: Path, text: str) -> str:
    return cli.ok("submit", write_spec(tmp_path, text)).stdout.strip()
