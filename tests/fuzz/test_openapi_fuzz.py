"""Property-based fuzzing of the whole OpenAPI with schemathesis: no input gives a 5xx.

Every operation is called with parameters and bodies generated from the OpenAPI document, as a
platform admin and as a tenant member, on SQLite and on PostgreSQL. Each generated request is
also sent mutated: a NUL byte in every string, and every number or quantity replaced by one
too large for a 64-bit column (the two classes of input that used to crash PostgreSQL).

The budget is small and fixed (``YUSHAN_FUZZ_EXAMPLES`` examples per operation, default 8,
derandomized) so ``make test`` stays fast; raise it locally to search harder. No response may be
a server error, every 4xx must be ``application/problem+json``, and no value may get past the
schemas to be refused by the database (the ``unvalidated-value`` 422 of :mod:`api.problems`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine

from api.app import create_app, prepare_database
from api.problems import UNVALIDATED_VALUE
from api.settings import ApiSettings
from tests.api.builders import ApiDriver, a_job
from tests.api.conftest import ADMIN_TOKEN

EXAMPLES = int(os.environ.get("YUSHAN_FUZZ_EXAMPLES", "8"))
PROBLEM = "application/problem+json"
HUGE = "9" * 20
QUANTITY = re.compile(r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>[a-zA-Z]{0,2})$")
QUANTITY_FIELDS = ("cpu", "memory", "cpu_per_gpu", "memory_per_gpu")


@dataclass(frozen=True)
class Known:
    """Names and ids that exist, so that a request with one bad field gets past the others."""

    job_id: str
    token_id: str

    def path_value(self, path: str, parameter: str) -> str | None:
        if parameter == "job_id":
            return self.job_id
        if parameter == "token_id":
            return self.token_id
        if parameter == "user":
            return "alice"
        if parameter == "name":
            for prefix, known in KNOWN_NAMES.items():
                if path.startswith(prefix):
                    return known
        return None


KNOWN_NAMES = {
    "/v1/tenants": "lab-a",
    "/v1/cohorts": "academic",
    "/v1/flavors": "h100",
    "/v1/users": "alice",
}
KNOWN_BODY = {"tenant": "lab-a", "flavor": "h100", "cohort": "academic", "user": "alice"}


def _populate(api: ApiDriver) -> tuple[str, Known]:
    """Objects for generated requests to reach: tenants, a flavor, a member and a job."""
    api.setup_platform()
    member = api.user_with_token("alice", "lab-a")
    job = member.ok(member.post("/v1/jobs", a_job().body()), 201)
    token_id = member.ok(member.get("/v1/users/alice/tokens"))[0]["id"]
    return member.token, Known(job["id"], token_id)


@pytest.mark.parametrize("role", ["admin", "member"])
def test_no_input_gives_a_server_error(database_url: str, engine: Engine, role: str) -> None:
    api_settings = ApiSettings(database_url=database_url, bootstrap_token=ADMIN_TOKEN)
    prepare_database(api_settings, engine)
    app = create_app(api_settings, engine)
    with TestClient(app) as client:
        member_token, known = _populate(ApiDriver(client, ADMIN_TOKEN))
    token = ADMIN_TOKEN if role == "admin" else member_token
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        _fuzz(operation, token, known, failures)
        operations += 1
    assert operations > 30
    assert not failures, "\n".join(failures[:20])


def _fuzz(operation: Any, token: str, known: Known, failures: list[str]) -> None:
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
        # Seed existing names, then break one field at a time: a bad value must be refused
        # by its own validation, not merely because another field already failed.
        seeded_path = {
            key: known.path_value(operation.path, key) or value
            for key, value in (original[0] or {}).items()
        }
        seeded_body = original[2]
        if isinstance(seeded_body, dict):
            seeded_body = {
                key: KNOWN_BODY.get(key, value) if isinstance(value, str) else value
                for key, value in seeded_body.items()
            }
        if isinstance(seeded_body, dict) and "name" in seeded_body:
            # Quantity fields are optional: also try them when the example left them out.
            optional = [f for f in QUANTITY_FIELDS if f in _body_fields(operation)]
            seeded_body = {**dict.fromkeys(optional, "1"), **seeded_body}
        for mutate in (_with_nul, _with_huge_number, _with_huge_quantity):
            for where, key in _fields(seeded_path, original[1], seeded_body):
                path, query, body = dict(seeded_path), dict(original[1] or {}), seeded_body
                if where == "path":
                    path[key] = mutate(path[key])
                    changed = path[key] != seeded_path[key]
                elif where == "query":
                    query[key] = mutate(query[key])
                    changed = query[key] != (original[1] or {})[key]
                else:
                    body = {**body, key: mutate(body[key])}
                    changed = body[key] != seeded_body[key]
                if not changed:
                    continue  # never send a seeded request that might really delete something
                case.path_parameters, case.query, case.body = path, query, body
                _check(operation, case, failures)
        case.path_parameters, case.query, case.body = original

    run()


def _body_fields(operation: Any) -> set[str]:
    """Top-level properties of the operation's JSON body (resolving one ``$ref``)."""
    body = operation.definition.raw.get("requestBody") or {}
    schema = ((body.get("content") or {}).get("application/json") or {}).get("schema") or {}
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = operation.schema.raw_schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return set(schema.get("properties") or {})


def _fields(path: Any, query: Any, body: Any) -> list[tuple[str, str]]:
    fields = [("path", key) for key in path or {}]
    fields += [("query", key) for key in query or {}]
    if isinstance(body, dict):
        fields += [("body", key) for key in body]
    return fields


def _check(operation: Any, case: Any, failures: list[str]) -> None:
    response = case.call()
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    problem = content_type.startswith(PROBLEM)
    unvalidated = problem and UNVALIDATED_VALUE in response.text
    if response.status_code >= 500 or (response.status_code >= 400 and not problem) or unvalidated:
        failures.append(
            f"{operation.label}: {response.status_code} path={case.path_parameters} "
            f"query={case.query} body={case.body!r:.300}\n  {response.text[:300]}"
        )


def _with_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value[:1] + "\x00" + value[1:]
    return _map(value, _with_nul)


def _with_huge_number(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(HUGE)
    return _map(value, _with_huge_number)


def _with_huge_quantity(value: Any) -> Any:
    """Quantities ("4", "+.5", "90Gi") keep their suffix and get 20 digits."""
    if isinstance(value, str) and QUANTITY.match(value):
        return HUGE + QUANTITY.sub(r"\g<suffix>", value)
    return _map(value, _with_huge_quantity)


def _map(value: Any, mutate: Any) -> Any:
    if isinstance(value, dict):
        return {key: mutate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mutate(item) for item in value]
    return value
