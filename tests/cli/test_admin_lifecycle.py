"""The admin lifecycle from the command line, against the real API: update and delete of
tenants, cohorts, flavors and users, cohort quotas, flavor ``--allow-empty`` and audit filters;
conflicts exit 6 with the server's advice, a member exits 4."""

from __future__ import annotations

from pathlib import Path

from tests.api.builders import ApiDriver, a_job
from tests.cli.driver import CliDriver

COHORT_QUOTA = """\
flavors:
  h100:
    gpu: {nominal: 32}
    cpu: {nominal: 256}
    memory: {nominal: 2Ti}
"""


def test_tenant_update_and_delete(admin_cli: CliDriver, platform: ApiDriver) -> None:
    updated = admin_cli.ok(
        "tenants",
        "update",
        "lab-a",
        "--kind",
        "industry",
        "--no-cohort",
        "--weight",
        "2",
        "-o",
        "json",
    ).json()
    assert (updated["kind"], updated["cohort"], updated["weight"]) == ("industry", None, 2.0)
    assert admin_cli.run("tenants", "update", "lab-a").code == 2  # nothing to change
    platform.ok(platform.post("/v1/jobs", a_job().body()), 201)
    refused = admin_cli.run("tenants", "delete", "lab-a")
    assert refused.code == 6
    assert "--force" in refused.stderr
    deleted = admin_cli.ok("tenants", "delete", "lab-a", "--force")
    assert deleted.stdout.strip() == "deleted tenant lab-a"
    assert admin_cli.run("tenants", "get", "lab-a").code == 5


def test_cohort_get_update_delete_and_quota(
    admin_cli: CliDriver, platform: ApiDriver, tmp_path: Path
) -> None:
    admin_cli.ok("cohorts", "create", "physics")
    moved = admin_cli.ok("cohorts", "update", "physics", "--parent", "academic")
    assert moved.stdout.strip() == "cohort physics is now under academic"
    quota = tmp_path / "quota.yaml"
    quota.write_text(COHORT_QUOTA)
    admin_cli.ok("cohorts", "quota", "set", "physics", str(quota))
    rows = admin_cli.ok("cohorts", "quota", "get", "physics").table()
    assert [(r["RESOURCE"], r["NOMINAL"]) for r in rows] == [
        ("gpu", "32"),
        ("cpu", "256"),
        ("memory", "2Ti"),
    ]
    shown = admin_cli.ok("cohorts", "get", "physics").stdout
    assert "Parent:" in shown
    assert "academic" in shown
    assert "2Ti" in shown
    refused = admin_cli.run("cohorts", "delete", "academic")
    assert refused.code == 6
    assert "physics" in refused.stderr
    admin_cli.ok("cohorts", "update", "physics", "--no-parent")
    admin_cli.ok("cohorts", "delete", "physics")
    assert admin_cli.run("cohorts", "get", "physics").code == 5


def test_flavor_get_update_delete_and_allow_empty(
    admin_cli: CliDriver, platform: ApiDriver
) -> None:
    admin_cli.ok("flavors", "create", "a100", "--label", "gpu=a100", "--allow-empty")
    updated = admin_cli.ok(
        "flavors",
        "update",
        "a100",
        "--cpu-per-gpu",
        "12",
        "--memory-per-gpu",
        "100Gi",
        "-o",
        "json",
    ).json()
    assert (updated["cpu_per_gpu"], updated["memory_per_gpu"]) == ("12", "100Gi")
    (row,) = admin_cli.ok("flavors", "get", "a100").table()
    assert (row["NAME"], row["CPU/GPU"], row["NODE LABELS"]) == ("a100", "12", "gpu=a100")
    assert admin_cli.run("flavors", "delete", "h100").code == 6  # in the tenants' quotas
    admin_cli.ok("flavors", "delete", "a100")
    assert admin_cli.run("flavors", "get", "a100").code == 5


def test_user_update_and_delete(admin_cli: CliDriver, platform: ApiDriver) -> None:
    bob = admin_cli.as_token(platform.user_with_token("bob", "lab-a").token)
    assert admin_cli.ok("users", "update", "bob", "--admin").stdout.strip() == (
        "bob is a platform admin"
    )
    bob.ok("users", "list")
    admin_cli.ok("users", "update", "bob", "--no-admin")
    assert bob.run("users", "list").code == 4
    assert admin_cli.run("users", "delete", "admin").code == 6  # the last admin
    admin_cli.ok("users", "delete", "bob")
    assert bob.run("whoami").code == 3  # the token died with the user


def test_members_may_not(alice: CliDriver) -> None:
    for command in (
        ("tenants", "delete", "lab-b"),
        ("cohorts", "delete", "academic"),
        ("flavors", "delete", "h100"),
        ("users", "delete", "admin"),
        ("cohorts", "quota", "set", "academic", "-"),
    ):
        assert alice.run(*command, stdin="flavors: {}").code == 4, command


def test_audit_filters(admin_cli: CliDriver, platform: ApiDriver) -> None:
    admin_cli.ok("cohorts", "create", "physics")
    admin_cli.ok("cohorts", "delete", "physics")
    rows = admin_cli.ok("audit", "--action", "cohort", "--since", "1h").table()
    assert [(r["ACTION"], r["TARGET"]) for r in rows] == [
        ("cohort.delete", "physics"),
        ("cohort.create", "physics"),
        ("cohort.create", "academic"),
    ]
    assert admin_cli.ok("audit", "--actor", "nobody", "-o", "json").json() == []
    assert admin_cli.ok("audit", "--until", "2000-01-01T00:00:00", "-o", "json").json() == []
    assert admin_cli.run("audit", "--since", "last tuesday").code == 2
