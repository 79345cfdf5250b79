"""The OpenAPI document tells the truth: problem+json errors, patterns, and allowed methods."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.routers import arrays, job_controls, jobs
from tests.api.builders import ApiDriver

PROBLEM = "application/problem+json"


def _schema(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_every_error_response_is_documented_as_problem_json(client: TestClient) -> None:
    document = _schema(client)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path.startswith("/v1"):
                for status in ("401", "403", "404", "422"):
                    assert status in responses, (method, path, status)
            if "requestBody" in operation:
                assert "413" in responses, (method, path)
            for status, response in responses.items():
                if status.startswith("4"):
                    assert list(response["content"]) == [PROBLEM], (method, path, status)


def test_names_cursors_and_quantities_carry_their_patterns(client: TestClient) -> None:
    document = _schema(client)
    schemas = document["components"]["schemas"]
    assert "pattern" in schemas["TenantCreate"]["properties"]["name"]
    assert "pattern" in schemas["UserCreate"]["properties"]["name"]
    flavor = schemas["FlavorCreate"]["properties"]["cpu_per_gpu"]
    # A quantity is a string with the Kubernetes pattern, or a plain non-negative number.
    assert {s["type"] for s in flavor["anyOf"]} == {"string", "number"}
    assert all("pattern" in s for s in flavor["anyOf"] if s["type"] == "string")
    image = schemas["JobCreate"]["properties"]["image"]
    assert "\\x00" in image["pattern"]
    parameters = {
        p["name"]: p["schema"] for p in document["paths"]["/v1/jobs"]["get"]["parameters"]
    }
    cursor = parameters["cursor"]
    cursor_pattern = cursor.get("pattern") or next(
        s["pattern"] for s in cursor["anyOf"] if "pattern" in s
    )
    assert cursor_pattern
    job_id = document["paths"]["/v1/jobs/{job_id}"]["get"]["parameters"][0]["schema"]
    assert "pattern" in job_id


def test_options_lists_every_allowed_method(api: ApiDriver) -> None:
    response = api.client.options("/v1/jobs")
    assert response.status_code == 204
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    tenant = api.client.options("/v1/tenants/lab-a")
    assert set(tenant.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE", "OPTIONS"}


def test_a_405_names_every_allowed_method(api: ApiDriver) -> None:
    response = api.request("PUT", "/v1/jobs")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}


def test_documented_problem_statuses_are_what_the_api_returns(api: ApiDriver) -> None:
    assert api.as_token("nope").get("/v1/jobs").headers["content-type"] == PROBLEM
    assert api.get("/v1/tenants/missing").status_code == 404


def test_the_job_routers_are_tried_first_and_documented_in_place(client: TestClient) -> None:
    """``/v1/jobs`` is matched first (routing cost under load), but the document keeps the
    order the routers were included in, and every path still has one router."""
    app: Any = client.app
    first = [getattr(route, "original_router", None) for route in app.router.routes[:3]]
    assert first == [jobs.router, job_controls.router, arrays.router]
    paths = list(_schema(client)["paths"])
    assert paths.index("/healthz") < paths.index("/v1/cohorts") < paths.index("/v1/jobs")
    assert paths.index("/v1/users") < paths.index("/v1/jobs") < paths.index("/v1/arrays/{array_id}")
    prefixes = ("/v1/jobs", "/v1/arrays")
    for route in app.state.documented_routes:
        router = getattr(route, "original_router", None)
        if router is not None and router not in (jobs.router, job_controls.router, arrays.router):
            assert not router.prefix.startswith(prefixes), router.prefix
