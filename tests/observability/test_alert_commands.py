"""Commands the alert rules tell the on-call to run exist in the CLI."""

from __future__ import annotations

import re

import pytest

from cli.main import build_parser
from tests.observability.promtool import ALERTS


def test_every_command_named_in_an_alert_exists() -> None:
    commands = re.findall(r"`(yushan [^`]+)`", ALERTS.read_text())
    assert commands
    parser = build_parser()
    for command in commands:
        words = re.sub(r"\{\{[^}]*\}\}", "lab-a", command).split()[1:]
        try:
            parser.parse_args(words)
        except SystemExit as error:  # argparse exits on an unknown command
            pytest.fail(f"alert names {command!r}, which the CLI rejects ({error})")
