"""What ``yushan serve`` prints at start-up names the API, the portal and the token to use."""

from __future__ import annotations

import pytest

from api.settings import ApiSettings
from cli import server


def test_the_welcome_names_the_portal_and_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    settings = ApiSettings(host="127.0.0.1", port=8123)
    server._print_welcome(settings, "ysh_admin_secret", None)
    printed = capsys.readouterr().out
    assert "web portal: http://127.0.0.1:8123/ui/" in printed
    assert "YUSHAN_TOKEN=ysh_admin_secret" in printed
