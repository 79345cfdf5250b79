"""Quantities as Kubernetes takes them, everywhere one appears: plain numbers (``cpu: 8``,
``memory: 1024`` bytes) and strings (``"64"``, ``"500m"``, ``"1Ti"``, ``"1e3"``) in job specs,
tenant and cohort quotas and flavor defaults; an invalid one is a 422 naming the field with a
sentence, never validator internals."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.builders import ApiDriver, a_job
from tests.api.test_bad_input import assert_problem

INTERNALS = ("function-", "constrained-", "literal[", "Input should be a valid string", "^\\+?")


@pytest.fixture
def platform(api: ApiDriver) -> ApiDriver:
    api.setup_platform(tenants=("lab-a",))
    return api


JOB_QUANTITIES: list[tuple[dict[str, Any], str, str]] = [
    ({"cpu": 8}, "8", "720Gi"),
    ({"cpu": "8"}, "8", "720Gi"),
    ({"cpu": 0.5}, "500m", "720Gi"),
    ({"cpu": "500m"}, "500m", "720Gi"),
    ({"memory": 1024}, "32", "1Ki"),
    ({"memory": "1Ti"}, "32", "1Ti"),
    ({"memory": "1e9"}, "32", "1G"),
    ({"cpu": 64.0, "memory": 2**36}, "64", "64Gi"),
]


@pytest.mark.parametrize(("fields", "cpu", "memory"), JOB_QUANTITIES, ids=str)
def test_job_quantities_as_numbers_or_strings(
    platform: ApiDriver, fields: dict[str, Any], cpu: str, memory: str
) -> None:
    job = platform.ok(platform.post("/v1/jobs", a_job().with_gpus(8).with_(**fields).body()), 201)
    assert (job["cpu"], job["memory"]) == (cpu, memory.replace("1G", "1000000000"))


QUOTA = {
    "gpu": {"nominal": "8", "borrowing_limit": 4},
    "cpu": {"nominal": 64, "borrowing_limit": "500m", "lending_limit": 0},
    "memory": {"nominal": 1024, "borrowing_limit": "1Ti"},
}
QUOTA_OUT = {
    "gpu": {"nominal": 8, "borrowing_limit": 4, "lending_limit": None},
    "cpu": {"nominal": "64", "borrowing_limit": "500m", "lending_limit": "0"},
    "memory": {"nominal": "1Ki", "borrowing_limit": "1Ti", "lending_limit": None},
}


@pytest.mark.parametrize("owner", ["/v1/tenants/lab-a", "/v1/cohorts/academic"])
def test_quota_quantities_as_numbers_or_strings(platform: ApiDriver, owner: str) -> None:
    body = {"flavors": {"h100": QUOTA}}
    assert platform.ok(platform.put(f"{owner}/quota", body))["flavors"]["h100"] == QUOTA_OUT
    assert platform.ok(platform.get(f"{owner}/quota"))["flavors"]["h100"] == QUOTA_OUT


def test_flavor_defaults_as_numbers(platform: ApiDriver) -> None:
    body = {"name": "v100", "cpu_per_gpu": 12, "memory_per_gpu": 48 * 2**30}
    flavor = platform.ok(platform.post("/v1/flavors", body), 201)
    assert (flavor["cpu_per_gpu"], flavor["memory_per_gpu"]) == ("12", "48Gi")


BAD: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("job cpu word", "job", {"cpu": "four"}, "body.cpu", "not a Kubernetes quantity"),
    ("job cpu boolean", "job", {"cpu": True}, "body.cpu", "must be a number or a quantity"),
    ("job cpu list", "job", {"cpu": [8]}, "body.cpu", "must be a number or a quantity"),
    ("job cpu zero", "job", {"cpu": 0}, "body.cpu", "must be greater than 0"),
    ("job cpu negative", "job", {"cpu": -2}, "body.cpu", "non-negative"),
    ("job cpu too fine", "job", {"cpu": "0.0001"}, "body.cpu", "finer than 1m"),
    ("job memory fraction", "job", {"memory": 1.5}, "body.memory", "whole number of bytes"),
    ("job memory absurd", "job", {"memory": 10**30}, "body.memory", "too large"),
    ("job memory above 1Pi", "job", {"memory": "2Pi"}, "body.memory", "at most 1Pi"),
    ("job memory too long", "job", {"memory": "1" * 40}, "body.memory", "at most 32 char"),
    (
        "quota cpu word",
        "quota",
        {"flavors": {"h100": {"gpu": {"nominal": 1}, "cpu": {"nominal": "lots"}}}},
        "body.flavors.h100.cpu.nominal",
        "not a Kubernetes quantity",
    ),
    (
        "quota memory negative",
        "quota",
        {"flavors": {"h100": {"gpu": {"nominal": 1}, "memory": {"nominal": -1}}}},
        "body.flavors.h100.memory.nominal",
        "non-negative",
    ),
    (
        "quota memory limit bad suffix",
        "quota",
        {
            "flavors": {
                "h100": {"gpu": {"nominal": 1}, "memory": {"nominal": 1, "lending_limit": "1Qi"}}
            }
        },
        "body.flavors.h100.memory.lending_limit",
        "not a Kubernetes quantity",
    ),
    ("flavor cpu zero", "flavor", {"cpu_per_gpu": "0"}, "body.cpu_per_gpu", "greater than 0"),
    ("flavor memory word", "flavor", {"memory_per_gpu": "big"}, "body.memory_per_gpu", "quantity"),
]


@pytest.mark.parametrize(("case", "kind", "body", "field", "message"), BAD, ids=[b[0] for b in BAD])
def test_invalid_quantities_name_the_field_in_a_sentence(
    platform: ApiDriver, case: str, kind: str, body: dict[str, Any], field: str, message: str
) -> None:
    if kind == "job":
        response = platform.post("/v1/jobs", a_job().with_(**body).body())
    elif kind == "quota":
        response = platform.put("/v1/tenants/lab-a/quota", body)
    else:
        response = platform.post("/v1/flavors", {"name": "v100", **body})
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert message in problem["errors"][0]["message"]
    assert not any(internal in problem["detail"] for internal in INTERNALS), problem["detail"]
    # Nothing changed.
    assert platform.ok(platform.get("/v1/jobs"))["items"] == []
    assert platform.ok(platform.get("/v1/tenants/lab-a/quota"))["flavors"]["h100"] == {
        "gpu": {"nominal": 16, "borrowing_limit": None, "lending_limit": None}
    }
    assert [f["name"] for f in platform.ok(platform.get("/v1/flavors"))] == ["h100"]
