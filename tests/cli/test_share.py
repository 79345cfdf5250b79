"""``yushan share`` against the real API: the tree, with units, and who sees which users."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from store.db import session_factory, transaction
from store.models import Usage
from tests.api.builders import ApiDriver
from tests.cli.driver import CliDriver


def record_usage(engine: Engine, rows: dict[tuple[str, str], float]) -> None:
    with transaction(session_factory(engine)) as session:
        for (tenant, user), gpu_seconds in rows.items():
            session.add(
                Usage(
                    tenant=tenant, user=user, gpu_seconds=gpu_seconds, updated_at=datetime.now(UTC)
                )
            )


def test_share_tree_with_units_and_user_rows_only_for_the_callers_tenants(
    alice: CliDriver, admin_cli: CliDriver, platform: ApiDriver, engine: Engine
) -> None:
    record_usage(
        engine,
        {
            ("lab-a", ""): 36_000.0,
            ("lab-a", "alice"): 36_000.0,
            ("lab-b", ""): 108_000.0,
            ("lab-b", "bob"): 108_000.0,
        },
    )
    admin_rows = admin_cli.ok("share").table()
    assert [row["NAME"] for row in admin_rows] == ["academic", "lab-a", "alice", "lab-b", "bob"]
    lab_a = admin_rows[1]
    assert (lab_a["KIND"], lab_a["NOMINAL"], lab_a["GPUS"], lab_a["BORROWED"]) == (
        "tenant",
        "16",
        "0",
        "0",
    )
    assert (lab_a["SHARE"], lab_a["USAGE"], lab_a["USAGE/SHARE"]) == ("50%", "10 GPU-h", "0.50x")
    assert admin_rows[3]["USAGE/SHARE"] == "1.50x"
    assert admin_rows[0]["USAGE"] == "40 GPU-h"
    as_alice = alice.ok("share", "-o", "json").json()
    assert [(r["kind"], r["name"]) for r in as_alice] == [
        ("cohort", "academic"),
        ("tenant", "lab-a"),
        ("user", "alice"),
        ("tenant", "lab-b"),
    ]
    only_a = alice.ok("share", "--tenant", "lab-a").table()
    assert [row["NAME"] for row in only_a] == ["lab-a", "alice"]
