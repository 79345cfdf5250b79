"""Where the client finds its server and token: flag, then environment, then config file."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from cli.config import DEFAULT_URL, ClientConfig, resolve_config, write_config_file
from tests.cli.driver import CliDriver, mock_http


@pytest.mark.parametrize(
    ("flags", "env", "file", "expected"),
    [
        ((None, None), {}, None, ("http://127.0.0.1:8080", None)),
        ((None, None), {}, ("http://file:1", "tf"), ("http://file:1", "tf")),
        (
            (None, None),
            {"YUSHAN_URL": "http://env:2"},
            ("http://file:1", "tf"),
            ("http://env:2", "tf"),
        ),
        ((None, None), {"YUSHAN_TOKEN": "te"}, ("http://file:1", "tf"), ("http://file:1", "te")),
        (
            ("http://flag:3/", "tg"),
            {"YUSHAN_URL": "http://env:2", "YUSHAN_TOKEN": "te"},
            ("http://file:1", "tf"),
            ("http://flag:3", "tg"),
        ),
    ],
)
def test_each_setting_comes_from_the_strongest_source(
    tmp_path: Path,
    flags: tuple[str | None, str | None],
    env: dict[str, str],
    file: tuple[str, str] | None,
    expected: tuple[str, str | None],
) -> None:
    path = tmp_path / "config.yaml"
    if file is not None:
        write_config_file(path, ClientConfig(url=file[0], token=file[1]))
    config = resolve_config(
        flag_url=flags[0], flag_token=flags[1], environ={**env, "YUSHAN_CONFIG": str(path)}
    )
    assert (config.url, config.token) == expected


def test_default_config_file_is_under_home(tmp_path: Path) -> None:
    path = tmp_path / ".config" / "yushan" / "config.yaml"
    write_config_file(path, ClientConfig(url="http://home:4", token="th"))
    config = resolve_config(flag_url=None, flag_token=None, environ={"HOME": str(tmp_path)})
    assert config == ClientConfig(url="http://home:4", token="th")
    assert resolve_config(flag_url=None, flag_token=None, environ={"HOME": "/nonexistent"}).url == (
        DEFAULT_URL
    )


def answering_whoami(capsys: pytest.CaptureFixture[str]) -> CliDriver:
    def whoami(request: httpx.Request) -> httpx.Response:
        name = request.headers.get("authorization", "").removeprefix("Bearer ")
        return httpx.Response(200, json={"name": name, "admin": False, "tenants": {}})

    return CliDriver(mock_http(whoami), capsys, token=None)


def test_main_precedence_flag_over_env_over_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    cli = answering_whoami(capsys)
    write_config_file(clean_environment, ClientConfig(url="http://file:1", token="from-file"))
    assert cli.run("whoami", "-o", "json", flags=False).json()["name"] == "from-file"
    monkeypatch.setenv("YUSHAN_TOKEN", "from-env")
    monkeypatch.setenv("YUSHAN_URL", "http://env:2")
    assert cli.run("whoami", "-o", "json", flags=False).json()["name"] == "from-env"
    flagged = cli.run("--token", "from-flag", "whoami", "--url", "http://flag:3", flags=False)
    assert flagged.stdout.splitlines()[0].split() == ["User:", "from-flag"]
    assert [c.url for c in cli.configs] == ["http://file:1", "http://env:2", "http://flag:3"]


def test_login_checks_the_token_and_writes_a_private_file(
    capsys: pytest.CaptureFixture[str], clean_environment: Path
) -> None:
    cli = answering_whoami(capsys)
    result = cli.run("login", "--url", "http://server:5", "--token", "secret", flags=False)
    assert result.code == 0
    assert "as secret" in result.stderr
    assert stat.S_IMODE(clean_environment.stat().st_mode) == 0o600
    assert resolve_config(
        flag_url=None, flag_token=None, environ={"YUSHAN_CONFIG": str(clean_environment)}
    ) == ClientConfig(url="http://server:5", token="secret")


def test_login_without_a_token_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], clean_environment: Path
) -> None:
    result = answering_whoami(capsys).run("login", "--no-verify", flags=False)
    assert result.code == 2
    assert not clean_environment.exists()


@pytest.mark.parametrize("content", ["url: [unclosed", "- just\n- a list\n"])
def test_unusable_config_file_exits_2(
    capsys: pytest.CaptureFixture[str], clean_environment: Path, content: str
) -> None:
    clean_environment.parent.mkdir(parents=True)
    clean_environment.write_text(content)
    result = answering_whoami(capsys).run("whoami", flags=False)
    assert result.code == 2
    assert str(clean_environment) in result.stderr


def test_a_broken_config_file_does_not_matter_when_flags_say_everything(
    capsys: pytest.CaptureFixture[str], clean_environment: Path
) -> None:
    clean_environment.parent.mkdir(parents=True)
    clean_environment.write_text("url: [unclosed")
    result = answering_whoami(capsys).run(
        "whoami", "--url", "http://a:1", "--token", "t", flags=False
    )
    assert result.code == 0
