"""Tenant, quota, user, token and platform commands against the real API."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.builders import ApiDriver, a_job
from tests.cli.driver import CliDriver

QUOTA_YAML = """\
flavors:
  h100:
    gpu: {nominal: 8, borrowing_limit: 4}
    cpu: {nominal: "64"}
"""


def test_quota_set_then_get_round_trips(
    admin_cli: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    path = tmp_path / "quota.yaml"
    path.write_text(QUOTA_YAML)
    admin_cli.ok("quota", "set", "lab-a", str(path))
    quota = admin_cli.ok("quota", "get", "lab-a", "-o", "json").json()
    assert quota["flavors"]["h100"]["gpu"] == {
        "nominal": 8,
        "borrowing_limit": 4,
        "lending_limit": None,
    }
    assert quota["flavors"]["h100"]["cpu"]["nominal"] == "64"
    rows = admin_cli.ok("quota", "get", "lab-a").table()
    assert [(r["RESOURCE"], r["NOMINAL"], r["BORROWING LIMIT"]) for r in rows] == [
        ("gpu", "8", "4"),
        ("cpu", "64", "-"),
    ]
    assert platform.ok(platform.get("/v1/tenants/lab-a/quota")) == quota


def test_quota_set_is_admin_only(alice: CliDriver) -> None:
    result = alice.run("quota", "set", "lab-a", "-", stdin="flavors: {}")
    assert result.code == 4


def test_tokens_create_prints_only_the_secret_which_then_works_until_revoked(
    admin_cli: CliDriver, platform: ApiDriver
) -> None:
    admin_cli.ok("users", "create", "carol")
    created = admin_cli.ok(
        "tokens", "create", "carol", "--description", "ci", "--expires-in", "30d"
    )
    secret = created.stdout.strip()
    assert "\n" not in secret
    assert "not shown again" in created.stderr
    carol = admin_cli.as_token(secret)
    assert carol.ok("whoami", "-o", "json").json()["name"] == "carol"
    (listed,) = carol.ok("tokens", "list", "carol").table()
    assert listed["DESCRIPTION"] == "ci"
    assert listed["EXPIRES"] in {"in 29d", "in 30d"}
    assert listed["REVOKED"] == "-"
    revoked = carol.ok("tokens", "revoke", "carol", listed["ID"], "-o", "json").json()
    assert revoked["revoked_at"] is not None
    assert carol.run("whoami").code == 3


def test_users_and_members(admin_cli: CliDriver, platform: ApiDriver) -> None:
    admin_cli.ok("users", "create", "dave")
    assert admin_cli.ok("users", "create", "erin", "--admin", "-o", "json").json()["is_admin"]
    users = {row["NAME"]: row["ADMIN"] for row in admin_cli.ok("users").table()}
    assert (users["dave"], users["erin"]) == ("no", "yes")
    added = admin_cli.ok("members", "add", "lab-a", "dave", "--role", "viewer")
    assert added.stdout.strip() == "dave is viewer in lab-a"
    assert admin_cli.ok("members", "list", "lab-a", "-o", "json").json() == [
        {"user": "dave", "tenant": "lab-a", "role": "viewer"}
    ]
    promoted = admin_cli.ok("members", "add", "lab-a", "dave", "tenant-admin")
    assert promoted.stdout.strip() == "dave is tenant-admin in lab-a"
    admin_cli.ok("members", "add", "lab-b", "dave")
    assert admin_cli.ok("members", "list", "lab-b").table() == [{"USER": "dave", "ROLE": "member"}]
    admin_cli.ok("members", "remove", "lab-b", "dave")
    assert admin_cli.ok("members", "list", "lab-b", "-o", "json").json() == []
    assert admin_cli.run("users", "create", "dave").code == 6


def test_whoami_lists_roles(alice: CliDriver) -> None:
    shown = alice.ok("whoami").stdout.splitlines()
    assert [line.split(":", 1)[1].strip() for line in shown] == [
        "alice",
        "no",
        "lab-a (member)",
    ]


def test_tenants_list_get_create_usage(admin_cli: CliDriver, platform: ApiDriver) -> None:
    assert [row["NAME"] for row in admin_cli.ok("tenants").table()] == ["lab-a", "lab-b"]
    created = admin_cli.ok(
        "tenants", "create", "lab-c", "--kind", "industry", "--cohort", "academic", "--weight", "2"
    )
    assert created.stdout.strip() == "created tenant lab-c"
    tenant = admin_cli.ok("tenants", "get", "lab-c", "-o", "json").json()
    assert (tenant["kind"], tenant["cohort"], tenant["weight"]) == ("industry", "academic", 2.0)
    shown = admin_cli.ok("tenants", "get", "lab-a").stdout
    assert "Namespace:" in shown
    assert "h100    gpu" in shown
    usage = admin_cli.ok("tenants", "usage", "lab-a").table()
    assert {r["RESOURCE"]: (r["USED"], r["NOMINAL"]) for r in usage}["gpu"] == ("0", "16")


def test_tenant_queue_shows_waiting_jobs_in_order(alice: CliDriver, platform: ApiDriver) -> None:
    ids = [
        alice.ok("submit", "-", stdin=json.dumps(a_job().with_gpus(g).body())).stdout.strip()
        for g in (1, 2)
    ]
    queue = alice.ok("tenants", "queue", "lab-a", "-o", "json").json()
    assert sorted(entry["job_id"] for entry in queue) == sorted(ids)
    shown = alice.ok("tenants", "queue", "lab-a")
    rows = shown.table()
    assert [row["JOB"] for row in rows] == [entry["job_id"] for entry in queue]
    assert [row["POS"] for row in rows] == [str(entry["position"]) for entry in queue]
    assert list(rows[0]) == [
        "POS", "JOB", "USER", "NAME", "GPUS", "PRIO", "WAITING", "BORROWS", "USAGE", "REASON"
    ]  # fmt: skip
    assert max(len(line) for line in shown.stdout.splitlines()) <= 120
    assert rows[0]["USAGE"].endswith("GPU-h")
    assert rows[0]["WAITING"].endswith("s")
    wide = alice.ok("tenants", "queue", "lab-a", "-o", "wide").table()
    factors = [name for name in queue[0]["factors"] if name != "priority"]
    assert len(wide[0]) == 8 + len(factors) + 2  # job columns, factors, reason, message
    assert wide[0]["TENANT USAGE"].endswith("GPU-h")
    assert wide[0]["TENANT USAGE RATIO"].endswith("x")
    assert wide[0]["SUBMITTED AT"].endswith("ago") or wide[0]["SUBMITTED AT"] == "now"


def test_cohorts_flavors_cluster_and_audit(admin_cli: CliDriver, platform: ApiDriver) -> None:
    admin_cli.ok("cohorts", "create", "physics", "--parent", "academic")
    cohorts = {row["NAME"]: row["PARENT"] for row in admin_cli.ok("cohorts", "list").table()}
    assert cohorts == {"academic": "-", "physics": "academic"}
    admin_cli.ok(
        "flavors", "create", "a100", "--label", "gpu=a100", "--label", "zone=b",
        "--cpu-per-gpu", "8", "--memory-per-gpu", "64Gi",
    )  # fmt: skip
    flavors = {row["NAME"]: row for row in admin_cli.ok("flavors").table()}
    assert flavors["a100"]["NODE LABELS"] == "gpu=a100,zone=b"
    assert (flavors["a100"]["CPU/GPU"], flavors["a100"]["MEMORY/GPU"]) == ("8", "64Gi")
    assert admin_cli.ok("cluster", "-o", "json").json() == {"flavors": [], "nodes": []}
    assert admin_cli.ok("cluster").stdout.strip() == "no nodes reported by the scheduler yet"
    actions = [row["ACTION"] for row in admin_cli.ok("audit", "--limit", "2", "--all").table()]
    assert actions[:2] == ["flavor.create", "cohort.create"]
    assert {"tenant.create", "flavor.create", "cohort.create"} <= set(actions)
    assert len(admin_cli.ok("audit", "--limit", "2", "-o", "json").json()) == 2
