"""The twelve inputs that used to crash PostgreSQL with a 500: NUL bytes and out-of-range numbers.

Each must give a problem+json 422 naming the parameter or field, and change nothing (the
audit log and the job list stay as they were), on both backends.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.builders import ApiDriver, a_job
from tests.api.test_bad_input import assert_problem


@pytest.fixture
def alice(api: ApiDriver) -> ApiDriver:
    api.setup_platform()
    return api.user_with_token("alice", "lab-a")


def _audit_count(api: ApiDriver) -> int:
    return len(api.ok(api.get("/v1/audit", params={"limit": 500}))["items"])


REQUESTS: list[tuple[str, str, str, Any, str]] = [
    ("image NUL", "POST", "/v1/jobs", a_job().with_(image="busy\u0000box").body(), "body.image"),
    ("cpu overflow", "POST", "/v1/jobs", a_job().with_(cpu="9" * 20).body(), "body.cpu"),
    (
        "memory overflow",
        "POST",
        "/v1/jobs",
        a_job().with_(memory="9999999999Ei").body(),
        "body.memory",
    ),
    (
        "command NUL",
        "POST",
        "/v1/jobs",
        a_job().with_(command=["a\u0000"]).body(),
        "body.command.0",
    ),
    ("args NUL", "POST", "/v1/jobs", a_job().with_(args=["\u0000"]).body(), "body.args.0"),
    ("env NUL", "POST", "/v1/jobs", a_job().with_(env={"A": "x\u0000"}).body(), "body.env.A"),
    (
        "annotation NUL",
        "POST",
        "/v1/jobs",
        a_job().with_(annotations={"a/b": "\u0000"}).body(),
        "body.annotations.a/b",
    ),
    (
        "token description NUL",
        "POST",
        "/v1/users/alice/tokens",
        {"description": "a\u0000b"},
        "body.description",
    ),
    ("user NUL", "GET", "/v1/users/a%00b", None, "path.name"),
    ("job NUL", "GET", "/v1/jobs/a%00b", None, "path.job_id"),
    ("job events NUL", "GET", "/v1/jobs/a%00b/events", None, "path.job_id"),
    ("job cancel NUL", "POST", "/v1/jobs/a%00b/cancel", None, "path.job_id"),
    ("token NUL", "DELETE", "/v1/users/alice/tokens/a%00b", None, "path.token_id"),
    ("jobs by user NUL", "GET", "/v1/jobs?user=a%00b", None, "query.user"),
    ("jobs by tenant NUL", "GET", "/v1/jobs?tenant=a%00b", None, "query.tenant"),
    (
        "cursor overflow",
        "GET",
        "/v1/jobs?cursor=czo5OTk5OTk5OTk5OTk5OTk5OTk5",
        None,
        "query.cursor",
    ),
    (
        "quota memory overflow",
        "PUT",
        "/v1/tenants/lab-a/quota",
        {"flavors": {"h100": {"gpu": {"nominal": 1}, "memory": {"nominal": "9999999999999Ei"}}}},
        "body.flavors.h100.memory.nominal",
    ),
    (
        "quota cpu overflow",
        "PUT",
        "/v1/tenants/lab-a/quota",
        {"flavors": {"h100": {"gpu": {"nominal": 1}, "cpu": {"nominal": "9" * 20}}}},
        "body.flavors.h100.cpu.nominal",
    ),
    (
        "flavor cpu overflow",
        "POST",
        "/v1/flavors",
        {"name": "big", "cpu_per_gpu": "9" * 20},
        "body.cpu_per_gpu",
    ),
    (
        "flavor label NUL",
        "POST",
        "/v1/flavors",
        {"name": "nul", "node_labels": {"a\u0000": "b"}},
        "[key]",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "field"), REQUESTS, ids=[r[0] for r in REQUESTS]
)
def test_refused_with_the_field_named_and_nothing_changed(
    api: ApiDriver, alice: ApiDriver, case: str, method: str, path: str, body: Any, field: str
) -> None:
    caller = api if path.startswith(("/v1/tenants", "/v1/flavors")) else alice
    audit_before = _audit_count(api)
    response = caller.request(method, path, json=body)
    assert_problem(response, 422, field)
    assert alice.ok(alice.get("/v1/jobs"))["items"] == []
    assert _audit_count(api) == audit_before
    assert api.ok(api.get("/v1/tenants/lab-a"))["quota"]["flavors"]["h100"]["gpu"]["nominal"] == 16


def test_largest_accepted_quantities_round_trip(api: ApiDriver, alice: ApiDriver) -> None:
    """The bounds are generous: a 1Ei memory quota and a 100000-core pod are accepted."""
    quota = {
        "flavors": {
            "h100": {
                "gpu": {"nominal": 16},
                "cpu": {"nominal": "1000000000"},
                "memory": {"nominal": "1Ei"},
            }
        }
    }
    out = api.ok(api.put("/v1/tenants/lab-a/quota", quota))
    assert out["flavors"]["h100"]["memory"]["nominal"] == "1Ei"
    job = alice.ok(alice.post("/v1/jobs", a_job().with_(cpu="100000", memory="1Pi").body()), 201)
    assert (job["cpu"], job["memory"]) == ("100000", "1Pi")
