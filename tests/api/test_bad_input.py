"""Every kind of bad input gets a problem+json naming the field, and leaves no trace."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.builders import ApiDriver, a_job

PROBLEM = "application/problem+json"


@pytest.fixture
def alice(api: ApiDriver) -> ApiDriver:
    api.setup_platform()
    return api.user_with_token("alice", "lab-a")


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert any(f == field or f.endswith(field) for f in fields), fields
    return body


BAD_JOBS: list[tuple[str, dict[str, Any], str]] = [
    ("negative gpus", {"gpus": -1}, "body.gpus"),
    ("zero gpus", {"gpus": 0}, "body.gpus"),
    ("absurd gpus", {"gpus": 10**9}, "body.gpus"),
    ("gpus as string", {"gpus": "four"}, "body.gpus"),
    ("absurd workers", {"workers": 100000}, "body.workers"),
    ("negative runtime", {"max_runtime_seconds": -5}, "body.max_runtime_seconds"),
    ("unknown field", {"gpu_count": 2}, "body.gpu_count"),
    ("bad priority", {"priority": "urgent"}, "body.priority"),
    ("name not a label value", {"name": "has spaces!"}, "body.name"),
    ("name too long", {"name": "x" * 64}, "body.name"),
    ("bad cpu quantity", {"cpu": "four"}, "body.cpu"),
    ("negative memory", {"memory": "-1Gi"}, "body.memory"),
    ("command not a list", {"command": "python train.py"}, "body.command"),
    ("env with bad name", {"env": {"1BAD": "x"}}, "body.env.1BAD.[key]"),
    ("image with spaces", {"image": "bad image"}, "body.image"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_JOBS, ids=[c[0] for c in BAD_JOBS])
def test_invalid_job_fields_are_named(
    alice: ApiDriver, case: str, change: dict[str, Any], field: str
) -> None:
    body = {**a_job().body(), **change}
    assert_problem(alice.post("/v1/jobs", body), 422, field)
    assert alice.ok(alice.get("/v1/jobs"))["items"] == []


NEVER_FITS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown flavor", {"flavor": "a100"}, "flavor"),
    ("tenant without quota for flavor", {"flavor": "v100"}, "flavor"),
]


@pytest.mark.parametrize(("case", "change", "field"), NEVER_FITS, ids=[c[0] for c in NEVER_FITS])
def test_job_that_can_never_fit_is_refused(
    api: ApiDriver, alice: ApiDriver, case: str, change: dict[str, Any], field: str
) -> None:
    api.ok(api.post("/v1/flavors", {"name": "v100"}), 201)
    body = assert_problem(alice.post("/v1/jobs", {**a_job().body(), **change}), 422, field)
    assert change["flavor"] in body["detail"]
    assert alice.ok(alice.get("/v1/jobs"))["items"] == []


def test_job_above_nominal_plus_borrowing_limit_is_refused(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    quota = {"flavors": {"h100": {"gpu": {"nominal": 8, "borrowing_limit": 4}}}}
    api.ok(api.put("/v1/tenants/lab-a/quota", quota))
    body = assert_problem(api.post("/v1/jobs", a_job().with_gpus(8).with_(workers=2).body()), 422)
    assert "at most 12" in body["detail"]


def test_malformed_json_is_400(alice: ApiDriver) -> None:
    response = alice.request(
        "POST",
        "/v1/jobs",
        content=b'{"tenant": "lab-a", ',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400, "body")


def test_huge_body_is_413(alice: ApiDriver) -> None:
    body = {**a_job().body(), "args": ["x" * 4000] * 300}
    assert_problem(alice.post("/v1/jobs", body), 413)
    assert alice.ok(alice.get("/v1/jobs"))["items"] == []


def test_huge_chunked_body_is_413(alice: ApiDriver) -> None:
    def chunks() -> Any:
        yield b'{"args": ['
        for _ in range(2000):
            yield b'"' + b"x" * 1000 + b'",'
        yield b'"x"]}'

    response = alice.request(
        "POST", "/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "bearer ysh_unknown_secret"],
)
def test_bad_tokens_are_401(alice: ApiDriver, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = alice.client.get("/v1/jobs", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_revoked_and_expired_tokens_are_401(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    alice = api.user_with_token("alice", "lab-a")
    tokens = api.ok(api.get("/v1/users/alice/tokens"))
    api.ok(api.request("DELETE", f"/v1/users/alice/tokens/{tokens[0]['id']}"))
    assert_problem(alice.get("/v1/jobs"), 401)


def test_invalid_tenant_names_are_refused(api: ApiDriver) -> None:
    for name in ("Lab_A", "-lab", "lab.a", "x" * 57, ""):
        body = {"name": name, "kind": "academic"}
        assert_problem(api.post("/v1/tenants", body), 422, "body.name")
    assert api.ok(api.get("/v1/tenants")) == []


def test_tenant_with_bad_quota_leaves_nothing(api: ApiDriver) -> None:
    body = {
        "name": "lab-z",
        "kind": "academic",
        "quota": {"flavors": {"nope": {"gpu": {"nominal": 4}}}},
    }
    problem = assert_problem(api.post("/v1/tenants", body), 422)
    assert "nope" in problem["detail"]
    assert api.get("/v1/tenants/lab-z").status_code == 404
    assert [e["action"] for e in api.ok(api.get("/v1/audit"))["items"]] == []


def test_negative_quota_is_refused(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    bad = {"flavors": {"h100": {"gpu": {"nominal": -1}}}}
    assert_problem(api.put("/v1/tenants/lab-a/quota", bad), 422, "nominal")
    quota = api.ok(api.get("/v1/tenants/lab-a/quota"))
    assert quota["flavors"]["h100"]["gpu"]["nominal"] == 16


def test_unknown_cohort_and_duplicate_names(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    assert_problem(
        api.post("/v1/tenants", {"name": "lab-b", "kind": "academic", "cohort": "ghost"}),
        422,
        "cohort",
    )
    assert_problem(api.post("/v1/tenants", {"name": "lab-a", "kind": "academic"}), 409)
    assert_problem(api.post("/v1/cohorts", {"name": "academic"}), 409)


def test_bad_query_parameters(alice: ApiDriver) -> None:
    assert_problem(alice.get("/v1/jobs", params={"limit": 0}), 422, "query.limit")
    assert_problem(alice.get("/v1/jobs", params={"limit": 100000}), 422, "query.limit")
    assert_problem(alice.get("/v1/jobs", params={"status": "sleeping"}), 422, "query.status.0")
    assert_problem(alice.get("/v1/jobs", params={"cursor": "%%%"}), 422, "cursor")
