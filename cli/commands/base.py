"""What every client command shares: its context, the common flags and input parsing.

A command is a function ``(Context, argparse.Namespace) -> int`` stored on its subparser as the
``run`` default (the server-side commands registered by :mod:`cli.server` use ``func`` and take
only the namespace). The context creates the API client lazily, so commands that never talk to
the server (``login --no-verify``) need no reachable server.

The common flags (``--url``, ``--token``, ``-o``) are accepted before or after the subcommand:
every parser carries them with ``default=SUPPRESS`` so a subcommand that is not given a flag
does not overwrite the value given before it.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import yaml

from cli.config import ClientConfig
from cli.errors import CliError, InputError
from cli.output import FORMATS, Output

if TYPE_CHECKING:
    from cli.client import YushanClient

ClientFactory = Callable[[ClientConfig], "YushanClient"]
Command = Callable[["Context", argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@dataclass
class Context:
    out: Output
    config: ClientConfig
    client_factory: ClientFactory
    environ: Mapping[str, str]
    sleep: Callable[[float], None] = time.sleep
    _client: YushanClient | None = field(default=None, init=False)

    @property
    def client(self) -> YushanClient:
        if self._client is None:
            self._client = self.client_factory(self.config)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def common_options() -> argparse.ArgumentParser:
    """The flags every client command accepts; see the module docstring for ``SUPPRESS``."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument(
        "--url", default=argparse.SUPPRESS, help="API server URL (env YUSHAN_URL, config file)"
    )
    group.add_argument(
        "--token", default=argparse.SUPPRESS, help="API token (env YUSHAN_TOKEN, config file)"
    )
    group.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default=argparse.SUPPRESS,
        help="table for people (default), json or yaml for scripts",
    )
    return common


COMMON = common_options()


def add_command(
    subparsers: Subparsers,
    name: str,
    run: Command | None,
    help_text: str,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A subparser with the common flags; ``run`` is what executes when it is chosen."""
    parser = subparsers.add_parser(
        name, help=help_text, description=help_text, parents=[COMMON], **kwargs
    )
    if run is not None:
        parser.set_defaults(run=run)
    return parser


def add_group(
    subparsers: Subparsers,
    name: str,
    help_text: str,
    *,
    default: Command | None = None,
) -> Subparsers:
    """A command with subcommands; without ``default`` a subcommand is required."""
    parser = add_command(subparsers, name, default, help_text)
    return parser.add_subparsers(
        dest=f"{name}_command", metavar="COMMAND", required=default is None
    )


@contextmanager
def sent_from(source: str) -> Iterator[None]:
    """Name ``source`` (the file a request body came from) in the errors the server returns
    about its fields: ``examples/job.yaml: gpus: must be a whole number >= 1``."""
    try:
        yield
    except CliError as error:
        if error.field_errors:
            error.source = "standard input" if source == "-" else source
        raise


# -- input --------------------------------------------------------------------------------------


def load_document(source: str) -> dict[str, Any]:
    """A YAML or JSON mapping from a file, or from standard input when ``source`` is ``-``."""
    name = "standard input" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read {name}: {error.strerror}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InputError(f"{name} is not valid YAML or JSON: {error}") from error
    if not isinstance(data, dict):
        raise InputError(f"{name} must hold a mapping of fields, not {type(data).__name__}")
    document: dict[str, Any] = _jsonable(data, name)
    return document


def _jsonable(value: Any, source: str) -> Any:
    """YAML values as JSON values: unquoted dates become ISO strings; keys become strings."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item, source) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item, source) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise InputError(f"{source} holds a {type(value).__name__} value, which JSON cannot carry")


_DURATION = re.compile(r"^(\d+)([smhdw]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``90``, ``90s``, ``15m``, ``12h``, ``30d`` or ``2w`` (argparse ``type``)."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number with s, m, h, d or w (e.g. 30d)"
        )
    return int(match.group(1)) * _SECONDS[match.group(2)]


def parse_key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (argparse ``type``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value
