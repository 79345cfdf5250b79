"""Runs ``yushan`` in-process against an ``httpx.Client`` and captures what it printed."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from cli.client import YushanClient
from cli.config import ClientConfig
from cli.main import build_parser, main

# The lead's server commands are not needed (and not imported) by the client tests.
PARSER = build_parser(register_server=lambda _: None)
TEST_URL = "http://testserver"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def yaml(self) -> Any:
        return yaml.safe_load(self.stdout)

    def table(self) -> list[dict[str, str]]:
        """The rows of the table on stdout, keyed by header, cut at the header's columns."""
        header, *lines = [line for line in self.stdout.splitlines() if line.strip()]
        starts = [match.start() for match in re.finditer(r"(?:^|(?<=  ))\S", header)]
        bounds = list(zip(starts, [*starts[1:], None], strict=True))
        names = [header[start:end].strip() for start, end in bounds]
        return [
            {
                name: line[start:end].strip()
                for name, (start, end) in zip(names, bounds, strict=True)
            }
            for line in lines
        ]


class CliDriver:
    """``run("jobs", "list")`` is ``yushan --url … --token … jobs list``, in this process."""

    def __init__(
        self, http: httpx.Client, capsys: pytest.CaptureFixture[str], token: str | None
    ) -> None:
        self.http = http
        self.capsys = capsys
        self.token = token
        self.configs: list[ClientConfig] = []

    def as_token(self, token: str | None) -> CliDriver:
        return CliDriver(self.http, self.capsys, token)

    def factory(self) -> Callable[[ClientConfig], YushanClient]:
        def make(config: ClientConfig) -> YushanClient:
            self.configs.append(config)
            return YushanClient(config.url, config.token, http=self.http)

        return make

    def run(self, *argv: str, stdin: str | None = None, flags: bool = True) -> Result:
        prefix = ["--url", TEST_URL] if flags else []
        if flags and self.token is not None:
            prefix += ["--token", self.token]
        self.capsys.readouterr()
        if stdin is not None:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("sys.stdin", io.StringIO(stdin))
                code = main([*prefix, *argv], client_factory=self.factory(), parser=PARSER)
        else:
            code = main([*prefix, *argv], client_factory=self.factory(), parser=PARSER)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *argv: str, stdin: str | None = None) -> Result:
        result = self.run(*argv, stdin=stdin)
        assert result.code == 0, result.stderr
        return result


def mock_http(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))
