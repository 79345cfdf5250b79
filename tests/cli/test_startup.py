"""The client starts fast because it never imports the server (see cli.main's docstring).

Each case runs ``yushan`` in a fresh interpreter and lists what the command imported: the
server's packages (FastAPI, SQLAlchemy, the Kubernetes client, Yushan's api/store/k8s/scheduler)
take seconds to import, the client needs none of them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_PACKAGES = (
    "api",
    "store",
    "k8s",
    "scheduler",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "kubernetes",
    "pydantic",
    "prometheus_client",
)
PROBE = """
import contextlib, io, json, sys
from cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def imported_by(*argv: str) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", "YUSHAN_CONFIG": "/nonexistent/config.yaml"},
    )
    answer = json.loads(result.stdout)
    return answer["code"], set(answer["modules"])


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["jobs", "list", "--help"], 0),
        # A real request that fails to connect: the HTTP client is imported, the server is not.
        (["--url", "http://127.0.0.1:9", "--token", "t", "jobs", "list"], 8),
    ],
)
def test_client_commands_import_nothing_of_the_server(argv: list[str], code: int) -> None:
    exit_code, modules = imported_by(*argv)
    assert exit_code == code
    assert modules & set(SERVER_PACKAGES) == set()


def test_doctor_imports_the_kubernetes_client_but_not_the_server() -> None:
    exit_code, modules = imported_by(
        "--url", "http://127.0.0.1:9", "doctor", "--kubeconfig", "/nonexistent"
    )
    assert exit_code == 1
    assert "kubernetes" in modules
    assert modules & {"api", "store", "scheduler", "fastapi", "sqlalchemy", "uvicorn"} == set()


def test_help_does_not_even_import_the_http_client() -> None:
    _, modules = imported_by("--help")
    assert "httpx" not in modules
    assert "cli" in modules


def test_a_server_command_gets_its_full_parser() -> None:
    """The probe itself: server commands do import the server, with all their flags."""
    exit_code, modules = imported_by("serve", "--help")
    assert exit_code == 0
    assert {"api", "uvicorn", "sqlalchemy"} <= modules


def test_simulate_imports_the_cycle_but_not_the_api_database_or_cluster_client() -> None:
    """``yushan simulate`` runs the scheduling cycle on a virtual clock; the API, the database
    and the Kubernetes client are seconds of start-up it does not need."""
    exit_code, modules = imported_by("simulate", "--help")
    assert exit_code == 0
    assert "scheduler" in modules
    assert (
        modules & {"api", "store", "k8s", "fastapi", "sqlalchemy", "uvicorn", "kubernetes"} == set()
    )


def test_other_server_commands_are_still_listed_next_to_simulate() -> None:
    from cli.main import SERVER_COMMANDS, build_parser, register_light_server_command

    parser = build_parser(register_light_server_command("simulate"))
    listing = parser.format_help()
    assert all(name in listing for name in SERVER_COMMANDS)
    args = parser.parse_args(["simulate", "--limit-jobs", "5"])
    assert args.limit_jobs == 5
    assert args.func.__module__ == "scheduler.simulate"
