"""The foundation's acceptance path: admin set-up, members submit, tenants stay isolated."""

from __future__ import annotations

import pytest

from tests.api.builders import ApiDriver, a_job


@pytest.fixture
def members(api: ApiDriver) -> tuple[ApiDriver, ApiDriver]:
    api.setup_platform()
    return api.user_with_token("alice", "lab-a"), api.user_with_token("bob", "lab-b")


def test_member_submits_lists_gets_and_cancels(members: tuple[ApiDriver, ApiDriver]) -> None:
    alice, _ = members
    job = alice.ok(alice.post("/v1/jobs", a_job().with_gpus(4).body()), 201)
    assert job["status"] == "queued"
    assert job["user"] == "alice"
    assert job["cpu"] == "16"  # 4 GPUs x the flavor's default 4 CPU per GPU
    assert job["memory"] == "360Gi"
    listed = alice.ok(alice.get("/v1/jobs"))
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    assert alice.ok(alice.get(f"/v1/jobs/{job['id']}"))["name"] == "train"
    cancelled = alice.ok(alice.post(f"/v1/jobs/{job['id']}/cancel"))
    assert cancelled["status"] == "cancelled"
    assert cancelled["finished_at"] is not None
    events = alice.ok(alice.get(f"/v1/jobs/{job['id']}/events"))
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, "queued"),
        ("queued", "cancelled"),
    ]


def test_other_tenant_sees_404_and_cannot_submit(members: tuple[ApiDriver, ApiDriver]) -> None:
    alice, bob = members
    job = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/events"):
        assert bob.get(path).status_code == 404
    assert bob.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
    assert bob.ok(bob.get("/v1/jobs"))["items"] == []
    assert bob.get("/v1/jobs", params={"tenant": "lab-a"}).status_code == 404
    refused = bob.post("/v1/jobs", a_job().in_tenant("lab-a").body())
    assert refused.status_code == 404
    assert refused.headers["content-type"] == "application/problem+json"
    assert bob.get("/v1/tenants/lab-a").status_code == 404
    assert [t["name"] for t in bob.ok(bob.get("/v1/tenants"))] == ["lab-b"]
    assert alice.ok(alice.get(f"/v1/jobs/{job['id']}"))["status"] == "queued"


def test_viewer_reads_but_cannot_submit(api: ApiDriver) -> None:
    api.setup_platform()
    viewer = api.user_with_token("victor", "lab-a", role="viewer")
    response = viewer.post("/v1/jobs", a_job().body())
    assert response.status_code == 403
    assert viewer.ok(viewer.get("/v1/jobs"))["items"] == []


def test_member_cannot_cancel_a_colleagues_job_but_tenant_admin_can(api: ApiDriver) -> None:
    api.setup_platform()
    alice = api.user_with_token("alice", "lab-a")
    carol = api.user_with_token("carol", "lab-a")
    lead = api.user_with_token("lead", "lab-a", role="tenant-admin")
    job = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    assert carol.post(f"/v1/jobs/{job['id']}/cancel").status_code == 403
    assert lead.ok(lead.post(f"/v1/jobs/{job['id']}/cancel"))["status"] == "cancelled"


def test_cancel_of_a_finished_job_is_a_conflict(members: tuple[ApiDriver, ApiDriver]) -> None:
    alice, _ = members
    job = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    alice.ok(alice.post(f"/v1/jobs/{job['id']}/cancel"))
    again = alice.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert len(alice.ok(alice.get(f"/v1/jobs/{job['id']}/events"))) == 2


def test_idempotency_key_returns_the_same_job(members: tuple[ApiDriver, ApiDriver]) -> None:
    alice, _ = members
    headers = {"Idempotency-Key": "run-42"}
    first = alice.post("/v1/jobs", a_job().body(), headers=headers)
    second = alice.post("/v1/jobs", a_job().body(), headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert len(alice.ok(alice.get("/v1/jobs"))["items"]) == 1
    reused = alice.post("/v1/jobs", a_job().with_gpus(2).body(), headers=headers)
    assert reused.status_code == 409


def test_pagination_walks_every_job_once(members: tuple[ApiDriver, ApiDriver]) -> None:
    alice, _ = members
    ids = [alice.ok(alice.post("/v1/jobs", a_job().body()), 201)["id"] for _ in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = alice.ok(alice.get("/v1/jobs", params=params))
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_status_filter(members: tuple[ApiDriver, ApiDriver]) -> None:
    alice, _ = members
    keep = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    gone = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    alice.ok(alice.post(f"/v1/jobs/{gone['id']}/cancel"))
    queued = alice.ok(alice.get("/v1/jobs", params={"status": "queued"}))
    assert [j["id"] for j in queued["items"]] == [keep["id"]]


def test_usage_reports_quota_per_flavor(members: tuple[ApiDriver, ApiDriver]) -> None:
    alice, _ = members
    usage = alice.ok(alice.get("/v1/tenants/lab-a/usage"))
    assert usage["flavors"]["h100"]["gpu"] == {
        "nominal": 16,
        "borrowing_limit": None,
        "lending_limit": None,
        "used": 0,
    }


def test_admin_changes_are_audited(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    api.ok(api.put("/v1/tenants/lab-a/quota", {"flavors": {"h100": {"gpu": {"nominal": 4}}}}))
    actions = [e["action"] for e in api.ok(api.get("/v1/audit"))["items"]]
    assert actions[:2] == ["tenant.quota.set", "tenant.create"]
    assert {"cohort.create", "flavor.create"} <= set(actions)
    member = api.user_with_token("alice", "lab-a")
    assert member.get("/v1/audit").status_code == 403
