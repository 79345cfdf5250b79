"""The admin lifecycle over the API: update and delete tenants, cohorts, flavors and users
with the rules that keep state consistent, every mutation audited, members refused, bad input
422, missing objects 404, conflicts 409 saying what to do; the audit log filtered by actor,
action and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.builders import ApiDriver, a_job
from tests.api.test_bad_input import assert_problem


@pytest.fixture
def platform(api: ApiDriver) -> ApiDriver:
    api.setup_platform(tenants=("lab-a", "lab-b"))
    return api


@pytest.fixture
def alice(platform: ApiDriver) -> ApiDriver:
    return platform.user_with_token("alice", "lab-a", role="tenant-admin")


def actions(api: ApiDriver, **filters: Any) -> list[tuple[str, str, str]]:
    page = api.ok(api.get("/v1/audit", params=filters))
    return [(e["actor"], e["action"], e["target"]) for e in page["items"]]


# -- permissions, missing objects, bad input -------------------------------------------------

MUTATIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("PATCH", "/v1/tenants/lab-a", {"weight": 2}),
    ("DELETE", "/v1/tenants/lab-b", None),
    ("PATCH", "/v1/cohorts/academic", {"parent": None}),
    ("DELETE", "/v1/cohorts/academic", None),
    ("PUT", "/v1/cohorts/academic/quota", {"flavors": {}}),
    ("PATCH", "/v1/flavors/h100", {"cpu_per_gpu": 8}),
    ("DELETE", "/v1/flavors/h100", None),
    ("PATCH", "/v1/users/alice", {"admin": True}),
    ("DELETE", "/v1/users/admin", None),
    ("GET", "/v1/audit", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), MUTATIONS, ids=[f"{m} {p}" for m, p, _ in MUTATIONS]
)
def test_only_platform_admins_may(
    platform: ApiDriver, alice: ApiDriver, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before = actions(platform)
    assert_problem(alice.request(method, path, json=body), 403)
    assert actions(platform) == before


MISSING: list[tuple[str, str, dict[str, Any] | None]] = [
    ("PATCH", "/v1/tenants/ghost", {"weight": 2}),
    ("DELETE", "/v1/tenants/ghost", None),
    ("PATCH", "/v1/cohorts/ghost", {"parent": None}),
    ("DELETE", "/v1/cohorts/ghost", None),
    ("PATCH", "/v1/flavors/ghost", {"cpu_per_gpu": 8}),
    ("DELETE", "/v1/flavors/ghost", None),
    ("PATCH", "/v1/users/ghost", {"admin": True}),
    ("DELETE", "/v1/users/ghost", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), MISSING, ids=[f"{m} {p}" for m, p, _ in MISSING]
)
def test_missing_objects_are_404(
    platform: ApiDriver, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before = actions(platform)
    problem = assert_problem(platform.request(method, path, json=body), 404)
    assert "ghost" in problem["detail"]
    assert actions(platform) == before


BAD: list[tuple[str, str, dict[str, Any] | None, dict[str, Any], str]] = [
    (
        "PATCH",
        "/v1/flavors/h100",
        {"node_labels": {"gpu": "not a value!"}},
        {},
        "body.node_labels.gpu",
    ),
    ("PATCH", "/v1/flavors/h100", {"memory_per_gpu": "lots"}, {}, "body.memory_per_gpu"),
    ("PATCH", "/v1/flavors/h100", {"colour": "red"}, {}, "body.colour"),
    ("PATCH", "/v1/cohorts/academic", {"parent": "Not_A_Name"}, {}, "body.parent"),
    ("PATCH", "/v1/cohorts/academic", {"parent": "ghost"}, {}, "body.parent"),
    ("PATCH", "/v1/cohorts/academic", {"parent": "academic"}, {}, "body.parent"),
    ("PATCH", "/v1/users/alice", {"admin": "perhaps"}, {}, "body.admin"),
    ("PATCH", "/v1/users/alice", {}, {}, "body.admin"),
    ("DELETE", "/v1/tenants/lab-a", None, {"force": "maybe"}, "query.force"),
    ("GET", "/v1/audit", None, {"action": "Tenant.Create"}, "query.action"),
    ("GET", "/v1/audit", None, {"actor": "a b"}, "query.actor"),
    ("GET", "/v1/audit", None, {"since": "yesterday"}, "query.since"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "params", "field"), BAD, ids=[f"{b[0]} {b[4]}" for b in BAD]
)
def test_bad_input_is_422_naming_the_field(
    platform: ApiDriver,
    alice: ApiDriver,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    params: dict[str, Any],
    field: str,
) -> None:
    before = actions(platform)
    problem = assert_problem(platform.request(method, path, json=body, params=params), 422)
    assert field in [e["field"] for e in problem["errors"]]
    assert actions(platform) == before


# -- tenants -----------------------------------------------------------------------------------


def test_a_tenant_with_unfinished_jobs_is_kept_unless_forced(
    platform: ApiDriver, alice: ApiDriver
) -> None:
    queued = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    problem = assert_problem(platform.request("DELETE", "/v1/tenants/lab-a"), 409)
    assert "1 unfinished jobs" in problem["detail"]
    assert "force=true" in problem["detail"]
    assert alice.ok(alice.get(f"/v1/jobs/{queued['id']}"))["status"] == "queued"

    platform.ok(platform.request("DELETE", "/v1/tenants/lab-a", params={"force": True}), 204)
    assert_problem(platform.get("/v1/tenants/lab-a"), 404)
    assert_problem(platform.get(f"/v1/jobs/{queued['id']}"), 404)
    assert platform.ok(platform.get("/v1/users/alice"))["name"] == "alice"
    assert "lab-a" not in platform.ok(alice.get("/v1/users/me"))["tenants"]
    (entry,) = platform.ok(platform.get("/v1/audit", params={"action": "tenant.delete"}))["items"]
    assert (entry["target"], entry["detail"]) == ("lab-a", {"force": True, "cancelled": 1})


def test_a_tenant_whose_jobs_all_finished_goes_without_force(
    platform: ApiDriver, alice: ApiDriver
) -> None:
    job = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    alice.ok(alice.post(f"/v1/jobs/{job['id']}/cancel"))
    platform.ok(platform.request("DELETE", "/v1/tenants/lab-a"), 204)
    # The name is free again, with nothing left of the old tenant.
    platform.ok(platform.post("/v1/tenants", {"name": "lab-a", "kind": "industry"}), 201)
    assert platform.ok(platform.get("/v1/tenants/lab-a/quota")) == {"flavors": {}}
    assert platform.ok(platform.get("/v1/jobs", params={"tenant": "lab-a"}))["items"] == []


def test_a_tenant_is_updated(platform: ApiDriver) -> None:
    body = {"kind": "industry", "cohort": None, "weight": 2.5}
    tenant = platform.ok(platform.request("PATCH", "/v1/tenants/lab-a", json=body))
    assert (tenant["kind"], tenant["cohort"], tenant["weight"]) == ("industry", None, 2.5)
    assert ("admin", "tenant.update", "lab-a") in actions(platform)


# -- cohorts -----------------------------------------------------------------------------------


def test_a_cohort_with_tenants_or_children_is_kept(platform: ApiDriver) -> None:
    problem = assert_problem(platform.request("DELETE", "/v1/cohorts/academic"), 409)
    assert "lab-a, lab-b" in problem["detail"]
    assert "--no-cohort" in problem["detail"]
    for tenant in ("lab-a", "lab-b"):
        platform.ok(platform.request("PATCH", f"/v1/tenants/{tenant}", json={"cohort": None}))
    platform.ok(platform.post("/v1/cohorts", {"name": "physics", "parent": "academic"}), 201)
    problem = assert_problem(platform.request("DELETE", "/v1/cohorts/academic"), 409)
    assert "cohorts physics" in problem["detail"]
    platform.ok(platform.request("PATCH", "/v1/cohorts/physics", json={"parent": None}))
    quota = {"flavors": {"h100": {"gpu": {"nominal": 8}}}}
    platform.ok(platform.put("/v1/cohorts/academic/quota", quota))
    platform.ok(platform.request("DELETE", "/v1/cohorts/academic"), 204)
    assert_problem(platform.get("/v1/cohorts/academic"), 404)
    # Its quota went with it: a new cohort of the same name starts empty.
    platform.ok(platform.post("/v1/cohorts", {"name": "academic"}), 201)
    assert platform.ok(platform.get("/v1/cohorts/academic/quota")) == {"flavors": {}}
    assert ("admin", "cohort.delete", "academic") in actions(platform)


def test_a_cohort_cannot_become_its_own_ancestor(platform: ApiDriver) -> None:
    platform.ok(platform.post("/v1/cohorts", {"name": "physics", "parent": "academic"}), 201)
    platform.ok(platform.post("/v1/cohorts", {"name": "optics", "parent": "physics"}), 201)
    problem = assert_problem(
        platform.request("PATCH", "/v1/cohorts/academic", json={"parent": "optics"}),
        422,
        "body.parent",
    )
    assert "ancestor" in problem["detail"]
    moved = platform.ok(
        platform.request("PATCH", "/v1/cohorts/optics", json={"parent": "academic"})
    )
    assert moved["parent"] == "academic"


# -- flavors -----------------------------------------------------------------------------------


def test_a_flavor_in_a_quota_or_with_unfinished_jobs_is_kept(
    platform: ApiDriver, alice: ApiDriver
) -> None:
    problem = assert_problem(platform.request("DELETE", "/v1/flavors/h100"), 409)
    assert "tenant lab-a, tenant lab-b" in problem["detail"]
    job = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    for tenant in ("lab-a", "lab-b"):
        platform.ok(platform.put(f"/v1/tenants/{tenant}/quota", {"flavors": {}}))
    problem = assert_problem(platform.request("DELETE", "/v1/flavors/h100"), 409)
    assert "1 unfinished jobs" in problem["detail"]
    alice.ok(alice.post(f"/v1/jobs/{job['id']}/cancel"))
    platform.ok(platform.request("DELETE", "/v1/flavors/h100"), 204)
    assert_problem(platform.get("/v1/flavors/h100"), 404)
    assert ("admin", "flavor.delete", "h100") in actions(platform)


def test_a_flavor_is_updated_and_its_new_defaults_apply_to_new_jobs(
    platform: ApiDriver, alice: ApiDriver
) -> None:
    before = alice.ok(alice.post("/v1/jobs", a_job().with_gpus(2).body()), 201)
    body = {"node_labels": {"gpu": "h100"}, "cpu_per_gpu": 8, "memory_per_gpu": "100Gi"}
    flavor = platform.ok(platform.request("PATCH", "/v1/flavors/h100", json=body))
    assert (flavor["node_labels"], flavor["cpu_per_gpu"], flavor["memory_per_gpu"]) == (
        {"gpu": "h100"},
        "8",
        "100Gi",
    )
    after = alice.ok(alice.post("/v1/jobs", a_job().with_gpus(2).body()), 201)
    assert (before["cpu"], before["memory"]) == ("8", "180Gi")
    assert (after["cpu"], after["memory"]) == ("16", "200Gi")
    (entry,) = platform.ok(platform.get("/v1/audit", params={"action": "flavor.update"}))["items"]
    assert entry["detail"]["cpu_per_gpu"] == "8"


# -- users -------------------------------------------------------------------------------------


def test_deleting_a_user_revokes_their_tokens_at_once(
    platform: ApiDriver, alice: ApiDriver
) -> None:
    job = alice.ok(alice.post("/v1/jobs", a_job().body()), 201)
    alice.ok(alice.get("/v1/users/me"))  # cached principal
    platform.ok(platform.request("DELETE", "/v1/users/alice"), 204)
    assert_problem(alice.get("/v1/users/me"), 401)
    assert_problem(platform.get("/v1/users/alice"), 404)
    assert platform.ok(platform.get("/v1/tenants/lab-a/members")) == []
    # Their jobs stay, still naming them.
    assert platform.ok(platform.get(f"/v1/jobs/{job['id']}"))["user"] == "alice"
    (entry,) = platform.ok(platform.get("/v1/audit", params={"action": "user.delete"}))["items"]
    assert entry["detail"] == {"tokens_revoked": 1}


def test_the_last_platform_admin_stays(platform: ApiDriver, alice: ApiDriver) -> None:
    problem = assert_problem(platform.request("DELETE", "/v1/users/admin"), 409)
    assert "last platform admin" in problem["detail"]
    assert_problem(platform.request("PATCH", "/v1/users/admin", json={"admin": False}), 409)
    promoted = platform.ok(platform.request("PATCH", "/v1/users/alice", json={"admin": True}))
    assert promoted["is_admin"] is True
    assert alice.ok(alice.get("/v1/users"))  # alice is admin at once (cache cleared)
    alice.ok(alice.request("PATCH", "/v1/users/admin", json={"admin": False}))
    assert_problem(platform.get("/v1/users"), 403)
    assert ("alice", "user.update", "admin") in actions(alice)


# -- audit -------------------------------------------------------------------------------------


def test_every_mutation_is_audited_and_the_log_filters(platform: ApiDriver) -> None:
    start = datetime.now(UTC)
    alice = platform.user_with_token("alice", None)
    platform.ok(platform.request("PATCH", "/v1/users/alice", json={"admin": True}))
    alice.ok(alice.post("/v1/cohorts", {"name": "physics"}), 201)
    alice.ok(alice.request("PATCH", "/v1/cohorts/physics", json={"parent": "academic"}))
    alice.ok(alice.request("DELETE", "/v1/cohorts/physics"), 204)
    alice.ok(alice.request("PATCH", "/v1/tenants/lab-b", json={"weight": 3}))
    alice.ok(alice.request("DELETE", "/v1/tenants/lab-b"), 204)
    assert actions(platform, actor="alice") == [
        ("alice", "tenant.delete", "lab-b"),
        ("alice", "tenant.update", "lab-b"),
        ("alice", "cohort.delete", "physics"),
        ("alice", "cohort.update", "physics"),
        ("alice", "cohort.create", "physics"),
    ]
    assert [a[1] for a in actions(platform, action="cohort")] == [
        "cohort.delete",
        "cohort.update",
        "cohort.create",
        "cohort.create",
    ]
    assert [a[1] for a in actions(platform, action="tenant.update")] == ["tenant.update"]
    assert actions(platform, action="tenant.quota") == []  # setup quotas came with create
    assert actions(platform, action="cohor") == []  # whole words only
    later = datetime.now(UTC) + timedelta(hours=1)
    assert actions(platform, since=later.isoformat()) == []
    assert len(actions(platform, since=start.isoformat(), actor="alice")) == 5
    assert actions(platform, until=start.isoformat()) == actions(
        platform, until=start.replace(tzinfo=None).isoformat()
    )
    setup = actions(platform, until=start.isoformat())
    assert ("admin", "tenant.create", "lab-a") in setup
    assert not any(actor == "alice" for actor, _, _ in setup)


def test_deleting_a_tenant_or_a_user_removes_their_per_user_limits(
    platform: ApiDriver, alice: ApiDriver
) -> None:
    """A tenant or user created again under the same name starts without the old overrides."""
    platform.ok(platform.put("/v1/tenants/lab-b/limits/bob", {"max_gpus": 3}))
    platform.ok(platform.put("/v1/tenants/lab-a/limits/alice", {"max_gpus": 5}))
    platform.ok(platform.request("DELETE", "/v1/tenants/lab-b"), 204)
    platform.ok(platform.request("DELETE", "/v1/users/alice"), 204)
    platform.ok(platform.post("/v1/tenants", {"name": "lab-b", "kind": "academic"}), 201)
    assert platform.ok(platform.get("/v1/tenants/lab-b/limits"))["users"] == {}
    assert platform.ok(platform.get("/v1/tenants/lab-a/limits"))["users"] == {}
