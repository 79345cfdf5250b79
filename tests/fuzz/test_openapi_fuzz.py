"""Property-based fuzzing of the whole OpenAPI with schemathesis: no input gives a 5xx.

Every operation is called with parameters and bodies generated from the OpenAPI document, as a
platform admin and as a tenant member, on SQLite and on PostgreSQL. Each generated request is
also sent mutated: a NUL byte in every string, and every number or quantity replaced by one
too large for a 64-bit column (the two classes of input that used to crash PostgreSQL).

The budget is small and fixed (``YUSHAN_FUZZ_EXAMPLES`` examples per operation, default 8,
derandomized) so ``make test`` stays fast; raise it locally to search harder. No response may be
a server error, and every 4xx must be ``application/problem+json``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine

from api.app import create_app, prepare_database
from api.settings import ApiSettings
from tests.api.builders import ApiDriver, a_job
from tests.api.conftest import ADMIN_TOKEN

EXAMPLES = int(os.environ.get("YUSHAN_FUZZ_EXAMPLES", "8"))
PROBLEM = "application/problem+json"
HUGE = "9" * 20


def _populate(api: ApiDriver) -> str:
    """Objects for generated requests to reach: tenants, a flavor, a member and a job."""
    api.setup_platform()
    member = api.user_with_token("alice", "lab-a")
    member.ok(member.post("/v1/jobs", a_job().body()), 201)
    return member.token


@pytest.mark.parametrize("role", ["admin", "member"])
def test_no_input_gives_a_server_error(database_url: str, engine: Engine, role: str) -> None:
    api_settings = ApiSettings(database_url=database_url, bootstrap_token=ADMIN_TOKEN)
    prepare_database(api_settings, engine)
    app = create_app(api_settings, engine)
    with TestClient(app) as client:
        member_token = _populate(ApiDriver(client, ADMIN_TOKEN))
    token = ADMIN_TOKEN if role == "admin" else member_token
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        _fuzz(operation, token, failures)
        operations += 1
    assert operations > 30
    assert not failures, "\n".join(failures[:20])


def _fuzz(operation: Any, token: str, failures: list[str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        _check(operation, case, failures)
        original = (case.path_parameters, case.query, case.body)
        for mutate in (_with_nul, _with_huge):
            path, query, body = original
            case.path_parameters = mutate(path)
            case.query = mutate(query)
            if body is not None and not isinstance(body, bytes):
                case.body = mutate(body)
            _check(operation, case, failures)
        case.path_parameters, case.query, case.body = original

    run()


def _check(operation: Any, case: Any, failures: list[str]) -> None:
    response = case.call()
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    problem = content_type.startswith(PROBLEM)
    if response.status_code >= 500 or (response.status_code >= 400 and not problem):
        failures.append(
            f"{operation.label}: {response.status_code} path={case.path_parameters} "
            f"query={case.query} body={case.body!r:.300}\n  {response.text[:300]}"
        )


def _with_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value[:1] + "\x00" + value[1:]
    return _map(value, _with_nul)


def _with_huge(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(HUGE)
    if isinstance(value, str) and value[:1].isdigit():
        return HUGE + value.lstrip("0123456789.")
    return _map(value, _with_huge)


def _map(value: Any, mutate: Any) -> Any:
    if isinstance(value, dict):
        return {key: mutate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mutate(item) for item in value]
    return value
