"""Hold, release and edit queued jobs; tenant and flavor stop policies; per-user limits;
dependencies at submission — through the API on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update

from store.cluster import NodeRecord, replace_nodes
from store.db import session_factory
from store.models import Job
from tests.api.builders import ApiDriver, a_job


@pytest.fixture
def lab(api: ApiDriver) -> dict[str, ApiDriver]:
    api.setup_platform()
    return {
        "alice": api.user_with_token("alice", "lab-a"),
        "carol": api.user_with_token("carol", "lab-a"),
        "lead": api.user_with_token("lead", "lab-a", role="tenant-admin"),
        "bob": api.user_with_token("bob", "lab-b"),
        "admin": api,
    }


def submit(driver: ApiDriver, **fields: Any) -> dict[str, Any]:
    body = a_job().with_(**fields).body()
    if "tenant" in fields:
        body["tenant"] = fields["tenant"]
    result: dict[str, Any] = driver.ok(driver.post("/v1/jobs", body), 201)
    return result


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def set_status(engine: Engine, job_id: str, status: str) -> None:
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job_id).values(status=status))


# -- hold / release ---------------------------------------------------------------------------


def test_owner_holds_and_releases_a_queued_job(lab: dict[str, ApiDriver]) -> None:
    alice = lab["alice"]
    job = submit(alice)
    held = alice.ok(alice.post(f"/v1/jobs/{job['id']}/hold"))
    assert (held["held"], held["reason"]) == (True, "Held")
    assert alice.ok(alice.post(f"/v1/jobs/{job['id']}/hold"))["held"] is True  # idempotent
    released = alice.ok(alice.post(f"/v1/jobs/{job['id']}/release"))
    assert (released["held"], released["reason"]) == (False, "Released")
    events = alice.ok(alice.get(f"/v1/jobs/{job['id']}/events"))
    assert [(e["to_status"], e["reason"]) for e in events] == [
        ("queued", "Submitted"),
        ("queued", "Held"),
        ("queued", "Released"),
    ]


@pytest.mark.parametrize(("actor", "status"), [("carol", 403), ("lead", 200), ("bob", 404)])
def test_only_the_owner_or_a_tenant_admin_may_hold(
    lab: dict[str, ApiDriver], actor: str, status: int
) -> None:
    job = submit(lab["alice"])
    response = lab[actor].post(f"/v1/jobs/{job['id']}/hold")
    assert response.status_code == status, response.text
    held = lab["alice"].ok(lab["alice"].get(f"/v1/jobs/{job['id']}"))["held"]
    assert held is (status == 200)


@pytest.mark.parametrize("status", ["admitted", "running", "succeeded", "cancelled"])
def test_holding_a_job_that_is_not_queued_is_a_conflict(
    lab: dict[str, ApiDriver], engine: Engine, status: str
) -> None:
    alice = lab["alice"]
    job = submit(alice)
    set_status(engine, job["id"], status)
    body = problem(alice.post(f"/v1/jobs/{job['id']}/hold"), 409)
    assert body["detail"] == f"job {job['id']} is {status}; only queued jobs can be held"
    assert alice.ok(alice.get(f"/v1/jobs/{job['id']}"))["held"] is False
    assert problem(alice.post(f"/v1/jobs/{job['id']}/release"), 409)["status"] == 409
    assert problem(alice.request("PATCH", f"/v1/jobs/{job['id']}", json={"name": "x"}), 409)


# -- edit -------------------------------------------------------------------------------------


def patch(driver: ApiDriver, job_id: str, **fields: Any) -> Any:
    return driver.request("PATCH", f"/v1/jobs/{job_id}", json=fields)


def test_owner_renames_and_lowers_priority_and_time_limit(lab: dict[str, ApiDriver]) -> None:
    alice = lab["alice"]
    job = submit(alice, priority="high", max_runtime_seconds=3600)
    edited = alice.ok(patch(alice, job["id"], name="eval", priority="low", max_runtime_seconds=60))
    assert (edited["name"], edited["priority"], edited["max_runtime_seconds"]) == (
        "eval",
        "low",
        60,
    )
    events = alice.ok(alice.get(f"/v1/jobs/{job['id']}/events"))
    assert events[-1]["message"] == (
        "updated by alice: name=eval priority=low max_runtime_seconds=60"
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"priority": "high"}, "body.priority"),
        ({"max_runtime_seconds": 7200}, "body.max_runtime_seconds"),
        ({"max_runtime_seconds": None}, "body.max_runtime_seconds"),
    ],
)
def test_raising_priority_or_time_limit_needs_a_tenant_admin(
    lab: dict[str, ApiDriver], fields: dict[str, Any], field: str
) -> None:
    alice, lead = lab["alice"], lab["lead"]
    job = submit(alice, max_runtime_seconds=3600)
    body = problem(patch(alice, job["id"], **fields), 403)
    assert body["errors"][0]["field"] == field
    assert alice.ok(alice.get(f"/v1/jobs/{job['id']}"))["max_runtime_seconds"] == 3600
    edited = lead.ok(patch(lead, job["id"], **fields))
    for name, value in fields.items():
        assert edited[name] == value


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"priority": "urgent"}, "body.priority"),
        ({"max_runtime_seconds": 0}, "body.max_runtime_seconds"),
        ({"name": "Not A Label!"}, "body.name"),
        ({"status": "running"}, "body.status"),
    ],
)
def test_bad_edits_are_422_naming_the_field(
    lab: dict[str, ApiDriver], fields: dict[str, Any], field: str
) -> None:
    alice = lab["alice"]
    job = submit(alice)
    body = problem(patch(alice, job["id"], **fields), 422)
    assert body["errors"][0]["field"] == field
    assert alice.ok(alice.get(f"/v1/jobs/{job['id']}"))["name"] == "train"


# -- dependencies -----------------------------------------------------------------------------


def test_dependencies_are_stored_and_shown(lab: dict[str, ApiDriver]) -> None:
    alice = lab["alice"]
    first = submit(alice)
    second = submit(alice, depends_on=[{"job": first["id"], "condition": "finished"}])
    assert second["depends_on"] == [{"job": first["id"], "condition": "finished"}]
    default = submit(alice, depends_on=[{"job": first["id"]}])
    assert default["depends_on"] == [{"job": first["id"], "condition": "succeeded"}]


def test_dependencies_on_other_tenants_or_unknown_jobs_are_refused(
    lab: dict[str, ApiDriver],
) -> None:
    alice, bob = lab["alice"], lab["bob"]
    theirs = submit(bob, tenant="lab-b")
    for job_id in (theirs["id"], "jnosuchjob"):
        body = problem(
            alice.post("/v1/jobs", a_job().with_(depends_on=[{"job": job_id}]).body()), 422
        )
        assert body["errors"] == [
            {
                "field": "depends_on.0.job",
                "message": f"job {job_id!r} not found in tenant 'lab-a'; a job may only "
                "depend on jobs of its own tenant",
            }
        ]
    assert alice.ok(alice.get("/v1/jobs"))["items"] == []


def test_an_edit_that_closes_a_dependency_cycle_is_refused(lab: dict[str, ApiDriver]) -> None:
    alice = lab["alice"]
    first = submit(alice)
    second = submit(alice, depends_on=[{"job": first["id"]}])
    third = submit(alice, depends_on=[{"job": second["id"]}])
    body = problem(patch(alice, first["id"], depends_on=[{"job": third["id"]}]), 422)
    assert body["errors"][0]["field"] == "depends_on"
    assert body["detail"] == (
        "the dependencies would form a cycle: "
        f"{first['id']} -> {third['id']} -> {second['id']} -> {first['id']}"
    )
    assert alice.ok(alice.get(f"/v1/jobs/{first['id']}"))["depends_on"] == []
    itself = problem(patch(alice, first["id"], depends_on=[{"job": first["id"]}]), 422)
    assert itself["errors"][0]["field"] == "depends_on"


# -- stop policies ----------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["hold", "hold_and_drain", "open"])
def test_tenant_stop_policy_is_set_shown_and_audited(
    lab: dict[str, ApiDriver], policy: str
) -> None:
    admin = lab["admin"]
    tenant = admin.ok(admin.request("PATCH", "/v1/tenants/lab-a", json={"stop_policy": policy}))
    assert tenant["stop_policy"] == policy
    assert admin.ok(admin.get("/v1/tenants/lab-a"))["stop_policy"] == policy
    entry = admin.ok(admin.get("/v1/audit"))["items"][0]
    assert (entry["action"], entry["target"], entry["detail"]) == (
        "tenant.update",
        "lab-a",
        {"stop_policy": policy},
    )


def test_flavor_stop_policy_is_admin_only_and_audited(lab: dict[str, ApiDriver]) -> None:
    admin, lead = lab["admin"], lab["lead"]
    assert (
        lead.request("PATCH", "/v1/flavors/h100", json={"stop_policy": "hold"}).status_code == 403
    )
    flavor = admin.ok(admin.request("PATCH", "/v1/flavors/h100", json={"stop_policy": "hold"}))
    assert flavor["stop_policy"] == "hold"
    entry = admin.ok(admin.get("/v1/audit"))["items"][0]
    assert (entry["action"], entry["detail"]) == ("flavor.update", {"stop_policy": "hold"})
    bad = problem(admin.request("PATCH", "/v1/flavors/h100", json={"stop_policy": "paused"}), 422)
    assert bad["errors"][0]["field"] == "body.stop_policy"
    assert admin.ok(admin.get("/v1/flavors/h100"))["stop_policy"] == "hold"


# -- per-user limits --------------------------------------------------------------------------


def test_queued_limit_refuses_submissions_with_429(lab: dict[str, ApiDriver]) -> None:
    admin, alice, carol = lab["admin"], lab["alice"], lab["carol"]
    limits = {"max_queued_jobs": 2, "max_gpus": 8}
    tenant = admin.ok(admin.request("PATCH", "/v1/tenants/lab-a", json={"user_limits": limits}))
    assert tenant["user_limits"] == {"max_gpus": 8, "max_running_jobs": None, "max_queued_jobs": 2}
    submit(alice)
    submit(alice)
    body = problem(alice.post("/v1/jobs", a_job().body()), 429)
    assert body["errors"] == [{"field": "max_queued_jobs", "message": body["detail"]}]
    assert body["detail"] == (
        "user alice has 2 queued job(s) in tenant lab-a and the limit is 2 (max_queued_jobs); "
        "this submission adds 1"
    )
    assert len(alice.ok(alice.get("/v1/jobs"))["items"]) == 2
    submit(carol)  # the limit is per user


def test_a_user_override_replaces_the_default(lab: dict[str, ApiDriver]) -> None:
    admin, lead, alice = lab["admin"], lab["lead"], lab["alice"]
    admin.ok(
        admin.request("PATCH", "/v1/tenants/lab-a", json={"user_limits": {"max_queued_jobs": 1}})
    )
    assert (
        lab["carol"].put("/v1/tenants/lab-a/limits/alice", {"max_queued_jobs": 3}).status_code
        == 403
    )
    set_ = lead.ok(lead.put("/v1/tenants/lab-a/limits/alice", {"max_queued_jobs": 3}))
    assert set_ == {"max_gpus": None, "max_running_jobs": None, "max_queued_jobs": 3}
    shown = alice.ok(alice.get("/v1/tenants/lab-a/limits"))
    assert shown["defaults"]["max_queued_jobs"] == 1
    assert shown["users"] == {"alice": set_}
    for _ in range(3):
        submit(alice)
    problem(alice.post("/v1/jobs", a_job().body()), 429)
    assert lead.request("DELETE", "/v1/tenants/lab-a/limits/alice").status_code == 204
    assert alice.ok(alice.get("/v1/tenants/lab-a/limits"))["users"] == {}
    assert lead.request("DELETE", "/v1/tenants/lab-a/limits/alice").status_code == 404
    actions = [e["action"] for e in admin.ok(admin.get("/v1/audit"))["items"][:2]]
    assert actions == ["tenant.user_limits.delete", "tenant.user_limits.set"]


@pytest.mark.parametrize("value", [-1, 1_000_001, "many"])
def test_bad_limits_are_422_and_change_nothing(lab: dict[str, ApiDriver], value: Any) -> None:
    admin = lab["admin"]
    response = admin.request(
        "PATCH", "/v1/tenants/lab-a", json={"user_limits": {"max_gpus": value}}
    )
    assert problem(response, 422)["errors"][0]["field"] == "body.user_limits.max_gpus"
    assert admin.ok(admin.get("/v1/tenants/lab-a"))["user_limits"]["max_gpus"] is None


# -- estimated start --------------------------------------------------------------------------


def test_estimate_on_demand(lab: dict[str, ApiDriver], engine: Engine) -> None:
    alice = lab["alice"]
    job = submit(alice, max_runtime_seconds=600)
    answer = alice.ok(alice.get(f"/v1/jobs/{job['id']}/estimate"))
    # no inventory is stored yet: the projection finds no node for it
    assert answer["estimated_start"] is None
    assert answer["message"].startswith("no start can be projected: Submitted")
    held = submit(alice)
    alice.ok(alice.post(f"/v1/jobs/{held['id']}/hold"))
    assert alice.ok(alice.get(f"/v1/jobs/{held['id']}/estimate"))["estimated_start"] is None
    set_status(engine, job["id"], "running")
    body = problem(alice.get(f"/v1/jobs/{job['id']}/estimate"), 409)
    assert body["detail"] == f"job {job['id']} is running; only queued jobs have an estimate"
    assert lab["bob"].get(f"/v1/jobs/{job['id']}/estimate").status_code == 404


def test_estimate_on_demand_follows_the_running_jobs_time_limit(
    lab: dict[str, ApiDriver], engine: Engine
) -> None:
    alice = lab["alice"]
    node = NodeRecord(
        name="h100-0",
        flavor="h100",
        labels={},
        gpu_capacity=8,
        gpu_allocatable=8,
        gpu_allocated=8,
        cpu_milli_allocatable=64_000,
        memory_bytes_allocatable=1 << 40,
        ready=True,
        schedulable=True,
    )
    with session_factory(engine)() as session, session.begin():
        replace_nodes(session, [node])
    running = submit(alice, gpus=8, max_runtime_seconds=3600)
    started = datetime.now(UTC) - timedelta(seconds=600)
    with engine.begin() as connection:
        connection.execute(
            update(Job)
            .where(Job.id == running["id"])
            .values(status="running", placement=["h100-0"], admitted_at=started)
        )
    waiting = submit(alice, gpus=8, max_runtime_seconds=60)
    answer = alice.ok(alice.get(f"/v1/jobs/{waiting['id']}/estimate"))
    projected = datetime.fromisoformat(answer["estimated_start"])
    assert abs((projected - (started + timedelta(seconds=3600))).total_seconds()) < 1
    assert answer["estimate_is_bound"] is False
    assert answer["message"].startswith("estimated to start at ")
