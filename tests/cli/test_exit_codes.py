"""Exit codes scripts can rely on, and error messages that say what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.api.builders import ApiDriver, a_job
from tests.cli.driver import CliDriver, mock_http


def test_bad_token_exits_3(admin_cli: CliDriver) -> None:
    result = admin_cli.as_token("ysh_not_a_token").run("jobs", "list")
    assert result.code == 3
    assert result.stderr.startswith("error: invalid, expired or revoked token")
    assert result.stdout == ""


def test_missing_token_exits_3_and_says_how_to_get_one(admin_cli: CliDriver) -> None:
    result = admin_cli.as_token(None).run("whoami")
    assert result.code == 3
    [line] = result.stderr.splitlines()
    assert line.startswith("error: no API token: set YUSHAN_TOKEN, or run 'yushan login")


def test_viewer_submitting_exits_4(platform: ApiDriver, admin_cli: CliDriver) -> None:
    viewer = admin_cli.as_token(platform.user_with_token("victor", "lab-a", role="viewer").token)
    result = viewer.run("submit", "-", stdin=json.dumps(a_job().body()))
    assert result.code == 4
    assert "viewer" in result.stderr


def test_unknown_job_exits_5(alice: CliDriver) -> None:
    for command in (("jobs", "get"), ("jobs", "cancel"), ("jobs", "events")):
        result = alice.run(*command, "j-does-not-exist")
        assert result.code == 5, command
        assert "not found" in result.stderr


def test_double_cancel_exits_6(alice: CliDriver, platform: ApiDriver) -> None:
    job_id = alice.ok("submit", "-", stdin=json.dumps(a_job().body())).stdout.strip()
    alice.ok("jobs", "cancel", job_id)
    again = alice.run("jobs", "cancel", job_id)
    assert again.code == 6
    assert job_id in again.stderr


def test_invalid_field_exits_7_and_names_each_field(alice: CliDriver, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "tenant: lab-a\nname: x\nimage: busybox\nflavor: h100\ngpus: 0\ngpu: 1\npriority: urgent\n"
    )
    result = alice.run("submit", str(spec))
    assert result.code == 7
    # One line per field, naming the file and the field as written in it; no pydantic wording.
    assert sorted(result.stderr.splitlines()) == [
        f"error: {spec}: gpu: unknown field",
        f"error: {spec}: gpus: must be a whole number >= 1",
        f"error: {spec}: priority: must be one of 'low', 'normal' or 'high'",
    ]


def test_a_single_field_error_is_printed_once(alice: CliDriver, tmp_path: Path) -> None:
    """The server's detail repeats its one field error: the CLI says it once."""
    spec = tmp_path / "job.yaml"
    spec.write_text("tenant: lab-a\nname: x\nimage: busybox\nflavor: nope\ngpus: 1\n")
    result = alice.run("submit", str(spec))
    assert result.code == 7
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {spec}: flavor: ")
    assert "nope" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: [unclosed", "is not valid YAML or JSON"),
        ("- a list\n- not a mapping\n", "must hold a mapping of fields, not list"),
        (None, "cannot read"),
    ],
)
def test_unusable_spec_file_exits_7_before_any_request(
    alice: CliDriver, tmp_path: Path, content: str | None, message: str
) -> None:
    spec = tmp_path / "job.yaml"
    if content is not None:
        spec.write_text(content)
    result = alice.run("submit", str(spec))
    assert result.code == 7
    assert message in result.stderr
    assert alice.configs == []  # no client was even created


def test_usage_errors_exit_2(alice: CliDriver) -> None:
    for argv in (("jobs",), ("jobs", "list", "--status", "sleeping"), ("no-such-command",), ()):
        assert alice.run(*argv).code == 2, argv


def test_help_documents_the_exit_codes_and_exits_0(alice: CliDriver) -> None:
    shown = alice.run("--help")
    assert shown.code == 0
    assert "3  authentication (401)" in shown.stdout
    assert "8  server or network error" in shown.stdout


def test_unreachable_server_exits_8_and_names_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = CliDriver(mock_http(refuse), capsys, "t").run("jobs", "list")
    assert result.code == 8
    assert result.stderr.startswith("error: cannot reach Yushan at http://testserver")


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (503, {"status": 503, "detail": "database unavailable"}, 8, "database unavailable"),
        (502, "<html>Bad Gateway</html>", 8, "HTTP 502: <html>Bad Gateway</html>"),
        (413, {"status": 413, "detail": "body too large"}, 7, "body too large"),
        (429, {"status": 429, "detail": "slow down"}, 9, "slow down"),
    ],
)
def test_other_http_errors_map_to_their_exit_code(
    capsys: pytest.CaptureFixture[str], status: int, body: object, code: int, message: str
) -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    result = CliDriver(mock_http(answer), capsys, "t").run("tenants")
    assert result.code == code
    assert result.stderr.strip() == f"error: {message}"
