"""``yushan``: the command line for users, tenant admins and platform admins.

The client commands (``submit``, ``jobs``, ``tenants``, ``quota``, ``users``, ``tokens``,
``doctor`` …) talk to the v1 API over HTTP; the server commands (``serve``, ``api``,
``scheduler``, ``db``) are registered by :mod:`cli.server`, which imports the whole server
(FastAPI, SQLAlchemy, the Kubernetes client: seconds of start-up). So the client never imports
it: :func:`main` builds the full parser only when the command line names a server command, and
otherwise lists the server commands by name and help text alone. ``simulate`` needs only the
scheduling cycle and has a module of its own (:mod:`cli.simulator`), imported alone. The HTTP client
(httpx) is imported when a command first talks to the server, so ``--help`` does not pay for it
either. ``tests/cli/test_startup.py`` holds both promises, and an import-linter contract
(pyproject.toml) forbids the client modules to import the server packages.

The server and token come from ``--url``/``--token``, else ``YUSHAN_URL``/``YUSHAN_TOKEN``, else
the config file (``$YUSHAN_CONFIG`` or ``~/.config/yushan/config.yaml``). Tables are for people;
``-o json`` and ``-o yaml`` print the API's objects unchanged for scripts.

Exit codes (the same table is in ``yushan --help``)::

    0  ok
    1  failure (e.g. a watched job did not succeed)
    2  usage error (bad arguments, unusable config file)
    3  authentication failed (401: token missing, invalid, expired or revoked)
    4  permission denied (403)
    5  not found (404)
    6  conflict (409: already exists, or wrong state, e.g. cancelling a finished job)
    7  invalid input (400/413/422, or a spec file that cannot be used); the problem's
       detail and each ``field: message`` are printed to stderr
    8  server or network error (5xx, or "cannot reach Yushan at URL")
    130 interrupted
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cli.commands import (
    accounting,
    completion,
    doctor,
    jobs,
    platform,
    queue_controls,
    share,
    tenants,
    users,
)
from cli.commands.base import COMMON, ClientFactory, Context, Subparsers
from cli.config import ClientConfig, resolve_config
from cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, CliError
from cli.output import Output

if TYPE_CHECKING:
    from cli.client import YushanClient

EPILOG = """\
exit codes:
  0  ok                      5  not found (404)
  1  failure                 6  conflict (409)
  2  usage error             7  invalid input (400/413/422)
  3  authentication (401)    8  server or network error (5xx, unreachable)
  4  permission (403)          9  a limit was reached (429)

configuration: --url/--token, else YUSHAN_URL/YUSHAN_TOKEN, else the config file
($YUSHAN_CONFIG or ~/.config/yushan/config.yaml, written by 'yushan login').
"""


SERVER_COMMANDS = {
    "serve": "run the control plane: API + scheduler (+ embedded cluster)",
    "api": "run only the API server",
    "scheduler": "run only the scheduler loop (settings from YUSHAN_* variables)",
    "db": "database maintenance",
    "simulate": "replay a job trace on a virtual clock",
}
"""The commands :mod:`cli.server` registers, with their help, for listing them cheaply."""
_VALUED_FLAGS = frozenset({"--url", "--token", "-o", "--output"})


LIGHT_SERVER_COMMANDS = {"simulate": "cli.simulator"}
"""Server commands with a module of their own that does not import the server."""


def register_server_stubs(subparsers: Subparsers, skip: str | None = None) -> None:
    """Name and help of each server command, for ``yushan --help``, without importing them."""
    for name, help_text in SERVER_COMMANDS.items():
        if name != skip:
            subparsers.add_parser(name, help=help_text)


def named_command(argv: Sequence[str]) -> str | None:
    """The first word that is not a flag (or a flag's value): the command."""
    words = iter(argv)
    for word in words:
        if word in _VALUED_FLAGS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def register_light_server_command(command: str) -> Callable[[Subparsers], None]:
    """Register ``command`` from its own module, and the other server commands as stubs."""

    def register(subparsers: Subparsers) -> None:
        register_server_stubs(subparsers, skip=command)
        importlib.import_module(LIGHT_SERVER_COMMANDS[command]).register(subparsers)

    return register


def register_server_commands(subparsers: Subparsers) -> None:
    """The lead's server-side commands, when ``cli.server`` is present in this build."""
    try:
        server = importlib.import_module("cli.server")
    except ModuleNotFoundError as error:
        if error.name != "cli.server":
            raise
        return
    server.register(subparsers)


def build_parser(
    register_server: Callable[[Subparsers], None] = register_server_commands,
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yushan",
        description="Fair-share GPU job scheduler: submit and follow jobs, manage tenants.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[COMMON],
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_server(subparsers)
    completion.register(subparsers, build_full_parser)
    for module in (jobs, tenants, share, users, platform, doctor, queue_controls, accounting):
        module.register(subparsers)
    return parser


def build_full_parser() -> argparse.ArgumentParser:
    """Every command with every flag, server commands included (imports the server)."""
    return build_parser(register_server_commands)


def default_client(config: ClientConfig) -> YushanClient:
    from cli.client import YushanClient

    return YushanClient(config.url, config.token)


def main(
    argv: Sequence[str] | None = None,
    *,
    client_factory: ClientFactory = default_client,
    parser: argparse.ArgumentParser | None = None,
) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if parser is None:
        command = named_command(arguments)
        if command in LIGHT_SERVER_COMMANDS:
            parser = build_parser(register_light_server_command(command))
        elif command in SERVER_COMMANDS:
            parser = build_parser(register_server_commands)
        else:
            parser = build_parser(register_server_stubs)
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:  # --help exits 0, a usage error 2: return it, do not exit
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if hasattr(args, "run"):
        return _run_client_command(args, client_factory)
    if hasattr(args, "func"):
        code: int = args.func(args)
        return code
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _run_client_command(args: argparse.Namespace, client_factory: ClientFactory) -> int:
    out = Output(fmt=getattr(args, "output", "table"), stdout=sys.stdout, stderr=sys.stderr)
    try:
        config = resolve_config(
            flag_url=getattr(args, "url", None),
            flag_token=getattr(args, "token", None),
            environ=os.environ,
        )
        context = Context(out=out, config=config, client_factory=client_factory, environ=os.environ)
        try:
            code: int = args.run(context, args)
        finally:
            context.close()
    except CliError as error:
        out.error(error)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `yushan jobs list | head`: the reader left; nothing to report
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stops the error at interpreter exit
        return EXIT_FAILURE
    return code


if __name__ == "__main__":
    sys.exit(main())
