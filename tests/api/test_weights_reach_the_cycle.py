"""Tenant weights set through the API reach the scheduler: stored, read into the snapshot, and
deciding the fair order (Kueue's DRS divides what a tenant borrows by its weight).

Two tenants of one cohort with 4 GPUs of nominal quota each both ask for 8, so both would borrow
4. With equal weights the older submission (lab-a's) goes first; a heavier lab-b must overtake
it. If weights were dropped anywhere between the API and the cycle, lab-a would stay first.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine

from api.app import create_app
from api.settings import ApiSettings
from scheduler.cycle import run_cycle
from scheduler.model import Demand, NodeState
from scheduler.policy import Policy
from scheduler.snapshots import build_snapshot
from store.db import session_factory
from tests.api.builders import ApiDriver, a_job


@pytest.fixture
def two_jobs(api: ApiDriver) -> tuple[str, str]:
    """(lab-a's job, lab-b's job), submitted in that order, 8 GPUs each."""
    api.setup_platform(gpus=4)
    alice = api.user_with_token("alice", "lab-a")
    bob = api.user_with_token("bob", "lab-b")
    first = alice.ok(alice.post("/v1/jobs", a_job().with_gpus(8).body()), 201)
    second = bob.ok(bob.post("/v1/jobs", a_job().in_tenant("lab-b").with_gpus(8).body()), 201)
    return first["id"], second["id"]


def set_weight(api: ApiDriver, tenant: str, weight: float) -> None:
    response = api.request("PATCH", f"/v1/tenants/{tenant}", json={"weight": weight})
    assert api.ok(response)["weight"] == weight


def queue(api: ApiDriver) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = api.ok(api.get("/v1/queue"))
    return sorted(entries, key=lambda e: e["position"])


def first_admitted(engine: Engine) -> str:
    """What one cycle on a single free 8-GPU node admits, from the store's snapshot."""
    node = NodeState("h100-0", "h100", Demand(8, 96_000, 1440 * 2**30))
    with session_factory(engine)() as session:
        snapshot = build_snapshot(session, (node,), time.time())
    [admit] = run_cycle(snapshot, Policy.named("fair")).admitted
    return admit.job_id


def test_equal_weights_serve_the_older_submission_first(
    api: ApiDriver, engine: Engine, two_jobs: tuple[str, str]
) -> None:
    lab_a_job, _ = two_jobs

    assert queue(api)[0]["job_id"] == lab_a_job
    assert first_admitted(engine) == lab_a_job


def test_a_heavier_tenant_overtakes_and_its_weight_divides_its_drs(
    api: ApiDriver, engine: Engine, two_jobs: tuple[str, str]
) -> None:
    lab_a_job, lab_b_job = two_jobs
    set_weight(api, "lab-b", 4.0)

    with session_factory(engine)() as session:
        snapshot = build_snapshot(session, (), time.time())
    assert {name: spec.weight for name, spec in snapshot.tenants.items()} == {
        "lab-a": 1.0,
        "lab-b": 4.0,
    }
    entries = queue(api)
    assert [e["job_id"] for e in entries] == [lab_b_job, lab_a_job]
    drs = {e["tenant"]: e["factors"]["tenant_drs"] for e in entries}
    assert drs["lab-b"] > 0
    assert drs["lab-a"] == pytest.approx(4 * drs["lab-b"])
    assert first_admitted(engine) == lab_b_job

    # A later change takes effect at the next cycle.
    set_weight(api, "lab-a", 8.0)
    assert [e["job_id"] for e in queue(api)] == [lab_a_job, lab_b_job]
    assert first_admitted(engine) == lab_a_job


def test_a_weight_given_at_creation_reaches_the_snapshot(api: ApiDriver, engine: Engine) -> None:
    api.ok(api.post("/v1/cohorts", {"name": "industry"}), 201)
    body = {"name": "acme", "kind": "industry", "cohort": "industry", "weight": 2.5}
    api.ok(api.post("/v1/tenants", body), 201)

    with session_factory(engine)() as session:
        snapshot = build_snapshot(session, (), time.time())
    assert snapshot.tenants["acme"].weight == 2.5


def test_the_queue_is_explained_with_the_schedulers_settings(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    """``/v1/queue`` orders with the policy the loop runs, not with a bare preset."""
    monkeypatch.setenv("YUSHAN_USAGE_WEIGHT", "3.5")
    monkeypatch.setenv("YUSHAN_STARVATION_SECONDS", "0")
    app = create_app(ApiSettings(database_url=sqlite_url, policy="fair"))

    assert app.state.policy == replace(
        Policy.named("fair"), usage_weight=3.5, starvation_seconds=None
    )
