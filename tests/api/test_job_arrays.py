"""Job arrays through the API: creation, listing, cancel/hold/release of the whole array or of
one task, the queued limit counting every task, and bad array specs."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, update

from store.models import Job
from tests.api.builders import ApiDriver, a_job


@pytest.fixture
def alice(api: ApiDriver) -> ApiDriver:
    api.setup_platform()
    return api.user_with_token("alice", "lab-a")


def submit_array(driver: ApiDriver, count: int, parallelism: int | None = None) -> dict[str, Any]:
    array: dict[str, Any] = {"count": count}
    if parallelism is not None:
        array["parallelism"] = parallelism
    body = a_job().with_(array=array, env={"SEED": "1"}).body()
    result: dict[str, Any] = driver.ok(driver.post("/v1/jobs", body), 201)
    return result


def test_an_array_creates_tasks_sharing_a_parent_id(alice: ApiDriver) -> None:
    first = submit_array(alice, 4, parallelism=2)
    array_id = first["array_id"]
    assert array_id.startswith("a")
    assert (first["array_index"], first["array_parallelism"]) == (0, 2)
    array = alice.ok(alice.get(f"/v1/arrays/{array_id}"))
    assert (array["count"], array["parallelism"], array["statuses"]) == (4, 2, {"queued": 4})
    assert [t["array_index"] for t in array["tasks"]] == [0, 1, 2, 3]
    assert [t["env"] for t in array["tasks"]] == [
        {"SEED": "1", "YUSHAN_ARRAY_ID": array_id, "YUSHAN_ARRAY_INDEX": str(i)} for i in range(4)
    ]
    assert len({t["id"] for t in array["tasks"]}) == 4
    listed = alice.ok(alice.get("/v1/jobs", params={"array_id": array_id}))["items"]
    assert sorted(j["array_index"] for j in listed) == [0, 1, 2, 3]
    submit_array(alice, 2)
    assert len(alice.ok(alice.get("/v1/jobs"))["items"]) == 6


def test_cancel_hold_and_release_the_whole_array_or_one_task(
    alice: ApiDriver, engine: Engine
) -> None:
    array_id = submit_array(alice, 3)["array_id"]
    tasks = alice.ok(alice.get(f"/v1/arrays/{array_id}"))["tasks"]
    with engine.begin() as connection:  # task 0 runs already
        connection.execute(update(Job).where(Job.id == tasks[0]["id"]).values(status="running"))
    held = alice.ok(alice.post(f"/v1/arrays/{array_id}/hold"))
    assert [t["held"] for t in held["tasks"]] == [False, True, True]
    released = alice.ok(alice.post(f"/v1/jobs/{tasks[1]['id']}/release"))
    assert released["held"] is False
    alice.ok(alice.post(f"/v1/arrays/{array_id}/release"))
    alice.ok(alice.post(f"/v1/jobs/{tasks[2]['id']}/cancel"))
    cancelled = alice.ok(alice.post(f"/v1/arrays/{array_id}/cancel"))
    assert cancelled["statuses"] == {"cancelled": 3}


def test_other_tenants_and_colleagues(api: ApiDriver, alice: ApiDriver) -> None:
    array_id = submit_array(alice, 2)["array_id"]
    bob = api.user_with_token("bob", "lab-b")
    carol = api.user_with_token("carol", "lab-a")
    assert bob.get(f"/v1/arrays/{array_id}").status_code == 404
    assert bob.post(f"/v1/arrays/{array_id}/cancel").status_code == 404
    assert carol.post(f"/v1/arrays/{array_id}/cancel").status_code == 403
    assert alice.get("/v1/arrays/anosucharr").status_code == 404
    assert alice.ok(alice.get(f"/v1/arrays/{array_id}"))["statuses"] == {"queued": 2}


def test_the_queued_limit_counts_every_task(api: ApiDriver, alice: ApiDriver) -> None:
    api.ok(api.request("PATCH", "/v1/tenants/lab-a", json={"user_limits": {"max_queued_jobs": 5}}))
    submit_array(alice, 3)
    refused = alice.post("/v1/jobs", a_job().with_(array={"count": 3}).body())
    assert refused.status_code == 429
    assert "this submission adds 3" in refused.json()["detail"]
    submit_array(alice, 2)


@pytest.mark.parametrize(
    ("array", "field"),
    [
        ({"count": 0}, "body.array.count"),
        ({"count": 1001}, "body.array.count"),
        ({"count": 4, "parallelism": 0}, "body.array.parallelism"),
        ({"count": 4, "parallelism": 5}, "body.array"),
        ({"count": 4, "step": 2}, "body.array.step"),
    ],
)
def test_bad_arrays_are_422_naming_the_field(
    alice: ApiDriver, array: dict[str, Any], field: str
) -> None:
    response = alice.post("/v1/jobs", a_job().with_(array=array).body())
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert alice.ok(alice.get("/v1/jobs"))["items"] == []


def test_a_replayed_array_submission_returns_the_same_array(alice: ApiDriver) -> None:
    body = a_job().with_(array={"count": 2}).body()
    headers = {"Idempotency-Key": "nightly"}
    first = alice.ok(alice.post("/v1/jobs", body, headers=headers), 201)
    again = alice.ok(alice.post("/v1/jobs", body, headers=headers), 200)
    assert again["array_id"] == first["array_id"]
    assert len(alice.ok(alice.get("/v1/jobs"))["items"]) == 2
