"""``checkpoint_interval_seconds`` on the wire: optional, bounded, echoed in every job view."""

from __future__ import annotations

import pytest

from api.schemas import MAX_CHECKPOINT_INTERVAL_SECONDS
from tests.api.builders import ApiDriver, a_job


@pytest.fixture
def alice(api: ApiDriver) -> ApiDriver:
    api.setup_platform()
    return api.user_with_token("alice", "lab-a")


def test_submitted_interval_is_returned_by_submit_get_and_list(alice: ApiDriver) -> None:
    body = a_job().with_(checkpoint_interval_seconds=1800).body()
    job = alice.ok(alice.post("/v1/jobs", body), 201)
    assert job["checkpoint_interval_seconds"] == 1800
    assert alice.ok(alice.get(f"/v1/jobs/{job['id']}"))["checkpoint_interval_seconds"] == 1800
    [listed] = alice.ok(alice.get("/v1/jobs"))["items"]
    assert listed["checkpoint_interval_seconds"] == 1800


def test_without_it_the_job_does_not_checkpoint(alice: ApiDriver) -> None:
    job = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    assert job["checkpoint_interval_seconds"] is None


@pytest.mark.parametrize("seconds", [60, MAX_CHECKPOINT_INTERVAL_SECONDS])
def test_bounds_are_inclusive(alice: ApiDriver, seconds: int) -> None:
    body = a_job().with_(checkpoint_interval_seconds=seconds).body()
    assert alice.ok(alice.post("/v1/jobs", body), 201)["checkpoint_interval_seconds"] == seconds


@pytest.mark.parametrize("seconds", [0, 59, MAX_CHECKPOINT_INTERVAL_SECONDS + 1, "often", 1.5])
def test_out_of_bounds_or_not_an_integer_is_422_naming_the_field(
    alice: ApiDriver, seconds: object
) -> None:
    response = alice.post("/v1/jobs", a_job().with_(checkpoint_interval_seconds=seconds).body())
    assert response.status_code == 422
    assert "checkpoint_interval_seconds" in response.text


def test_the_interval_is_part_of_the_idempotent_request(alice: ApiDriver) -> None:
    headers = {"Idempotency-Key": "nightly"}
    first = alice.post("/v1/jobs", a_job().body(), headers=headers)
    assert first.status_code == 201
    same = alice.post("/v1/jobs", a_job().body(), headers=headers)
    assert same.status_code == 200
    other = a_job().with_(checkpoint_interval_seconds=600).body()
    assert alice.post("/v1/jobs", other, headers=headers).status_code == 409
