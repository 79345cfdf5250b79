"""The queue's explanation (``/v1/tenants/{name}/queue``, ``/v1/queue``, the portal's queue
fragment) is computed once while the stored state is unchanged and shared by every request
(:mod:`api.queuecache`), and is computed again right after anything that changes it: a
submission, a cancel, a quota edit, a scheduler iteration. In process, SQLite and PostgreSQL."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.queuecache import VersionedCache
from api.routers import queue as queue_routes
from scheduler import cycle
from store import heartbeat
from store.common import utcnow
from store.db import session_factory, transaction
from tests.api.builders import ApiDriver, a_job
from tests.api.test_portal import browser_for

QUOTA = "/v1/tenants/lab-a/quota"


@pytest.fixture
def explanations(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The explanations of the queue the API computes (one entry per cycle run)."""
    calls: list[str | None] = []
    explain = cycle.explain_queue

    def counted(*args: Any) -> Any:
        calls.append(args[2])
        return explain(*args)

    monkeypatch.setattr(queue_routes, "explain_queue", counted)
    return calls


def waiting(driver: ApiDriver, tenant: str = "lab-a") -> list[str]:
    return [e["job_id"] for e in driver.ok(driver.get(f"/v1/tenants/{tenant}/queue"))]


def factors(driver: ApiDriver) -> dict[str, float]:
    entries = driver.ok(driver.get("/v1/tenants/lab-a/queue"))
    return dict(entries[0]["factors"])


def submit(driver: ApiDriver, tenant: str = "lab-a", gpus: int = 8) -> str:
    body = a_job().in_tenant(tenant).with_gpus(gpus).body()
    job_id: str = driver.ok(driver.post("/v1/jobs", body), 201)["id"]
    return job_id


def test_every_viewer_and_tenant_shares_one_explanation_while_nothing_changes(
    api: ApiDriver, client: TestClient, explanations: list[str | None]
) -> None:
    api.setup_platform()
    alice, bob = api.user_with_token("alice", "lab-a"), api.user_with_token("bob", "lab-b")
    mine, theirs = submit(alice), submit(bob, "lab-b")
    tab = browser_for(client, alice.token)

    assert waiting(alice) == [mine]
    assert waiting(bob, "lab-b") == [theirs]
    assert f"/ui/jobs/{mine}" in tab.get("/ui/tenants/lab-a/queue").text
    assert {e["job_id"] for e in api.ok(api.get("/v1/queue"))} == {mine, theirs}
    assert explanations == [None]  # the whole queue, once


def test_the_view_changes_right_after_a_submit_a_cancel_and_a_quota_edit(
    api: ApiDriver, client: TestClient, explanations: list[str | None]
) -> None:
    api.setup_platform(gpus=4)
    alice = api.user_with_token("alice", "lab-a")
    tab = browser_for(client, alice.token)
    first = submit(alice)
    assert waiting(alice) == [first]

    second = submit(alice)
    assert waiting(alice) == [first, second]
    fragment = tab.get("/ui/tenants/lab-a/queue", headers={"HX-Request": "true"}).text
    assert f"/ui/jobs/{second}" in fragment

    alice.ok(alice.post(f"/v1/jobs/{first}/cancel"))
    assert waiting(alice) == [second]
    assert f"/ui/jobs/{first}" not in tab.get("/ui/tenants/lab-a/queue").text

    assert factors(alice)["tenant_borrowing"] == 1.0  # 8 GPUs asked, 4 guaranteed
    api.ok(api.put(QUOTA, {"flavors": {"h100": {"gpu": {"nominal": 16}}}}))
    assert factors(alice)["tenant_borrowing"] == 0.0
    assert len(explanations) == 4  # once per state: nothing was explained twice


def test_a_scheduler_iteration_makes_the_next_request_explain_again(
    api: ApiDriver, engine: Engine, explanations: list[str | None]
) -> None:
    """The loop's writes (admissions, positions, decayed usage, inventory) commit with its
    heartbeat, which is part of the version."""
    api.setup_platform()
    alice = api.user_with_token("alice", "lab-a")
    submit(alice)
    waiting(alice)
    with transaction(session_factory(engine)) as session:
        heartbeat.beat(
            session, "scheduler-0", utcnow(), interval_seconds=15, create_namespaces=True
        )
    waiting(alice)
    waiting(alice)
    assert len(explanations) == 2


def test_an_explanation_is_kept_at_most_max_age_seconds() -> None:
    """What only the clock changes (a backoff ending) is seen within one cycle interval."""
    now = [100.0]
    cache: VersionedCache[int] = VersionedCache(15.0, clock=lambda: now[0])
    computed = iter(range(10))

    assert cache.get("v1", lambda: next(computed)) == 0
    now[0] += 14.9
    assert cache.get("v1", lambda: next(computed)) == 0
    assert cache.get("v2", lambda: next(computed)) == 1
    now[0] += 15.0
    assert cache.get("v2", lambda: next(computed)) == 2


def test_the_age_factor_is_as_of_each_answer(
    api: ApiDriver, explanations: list[str | None]
) -> None:
    api.setup_platform()
    alice = api.user_with_token("alice", "lab-a")
    submit(alice)
    before = factors(alice)
    after = factors(alice)
    assert len(explanations) == 1
    assert after["age_seconds"] > before["age_seconds"]
    assert after["submitted_at"] == before["submitted_at"]


def test_the_queue_is_explained_with_the_garbage_collector_paused(
    api: ApiDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot's rows die with the request; collections while reading them made the tail."""
    collecting: list[bool] = []
    explain = cycle.explain_queue

    def watched(*args: Any) -> Any:
        collecting.append(gc.isenabled())
        return explain(*args)

    monkeypatch.setattr(queue_routes, "explain_queue", watched)
    api.setup_platform()
    api.ok(api.get("/v1/queue"))
    assert collecting == [False]
    assert gc.isenabled()
