"""The principal cache: bounded staleness across processes, none within one."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import cast

import pytest
from fastapi import Request
from sqlalchemy import Engine

from api import deps
from api.authcache import PrincipalCache
from store.users import Principal
from tests.api.builders import ApiDriver, a_job
from tests.statements import recorded_statements


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = PrincipalCache(ttl=5, clock=clock)
    alice = Principal("alice", False, {"lab-a": "member"}, "t1")
    cache.put("h", alice)
    clock.now += 4.9
    assert cache.get("h") == alice
    clock.now += 0.2
    assert cache.get("h") is None


def test_zero_ttl_disables_caching() -> None:
    cache = PrincipalCache(ttl=0)
    cache.put("h", Principal("alice", False, {}, "t1"))
    assert cache.get("h") is None


def test_membership_removal_takes_effect_at_once(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    alice = api.user_with_token("alice", "lab-a")
    assert alice.post("/v1/jobs", a_job().body()).status_code == 201
    response = api.request("DELETE", "/v1/tenants/lab-a/members/alice")
    assert response.status_code == 204
    assert alice.post("/v1/jobs", a_job().body()).status_code == 404


def test_token_revocation_takes_effect_at_once(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    alice = api.user_with_token("alice", "lab-a")
    assert alice.get("/v1/jobs").status_code == 200
    token_id = api.ok(api.get("/v1/users/alice/tokens"))[0]["id"]
    api.ok(api.request("DELETE", f"/v1/users/alice/tokens/{token_id}"))
    assert alice.get("/v1/jobs").status_code == 401


def test_a_token_is_looked_up_once_then_served_from_the_cache(api: ApiDriver) -> None:
    api.setup_platform(tenants=("lab-a",))
    alice = api.user_with_token("alice", "lab-a")
    engine: Engine = api.client.app.state.engine  # type: ignore[attr-defined]
    with recorded_statements(engine) as statements:
        for _ in range(3):
            assert alice.get("/v1/jobs").status_code == 200
    assert len([s for s in statements if "FROM tokens" in s]) == 1


def fake_request(cache: PrincipalCache) -> Request:
    state = SimpleNamespace(principal_cache=cache, principal_lookups={}, session_factory=None)
    return cast(Request, SimpleNamespace(app=SimpleNamespace(state=state)))


def test_requests_that_miss_together_share_one_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    alice = Principal("alice", False, {"lab-a": "member"}, "t1")

    def authenticate(_sessions: object, key: str) -> Principal:
        calls.append(key)
        return alice

    monkeypatch.setattr(deps, "_authenticate", authenticate)
    cache = PrincipalCache(ttl=5)
    request = fake_request(cache)

    async def many() -> list[Principal | None]:
        return list(await asyncio.gather(*(deps._look_up(request, "h") for _ in range(10))))

    assert asyncio.run(many()) == [alice] * 10
    assert calls == ["h"]
    assert cache.get("h") == alice
    assert request.app.state.principal_lookups == {}


def test_a_change_through_this_process_drops_the_lookup_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request after a revocation must not join (or be cached from) a lookup that started
    before it."""
    alice = Principal("alice", False, {"lab-a": "member"}, "t1")
    cache = PrincipalCache(ttl=5)
    request = fake_request(cache)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def authenticate(_sessions: object, key: str) -> Principal | None:
        calls.append(key)
        if len(calls) == 1:  # the lookup from before the change: valid when it read
            started.set()
            release.wait(30)
            return alice
        return None  # revoked

    monkeypatch.setattr(deps, "_authenticate", authenticate)

    async def scenario() -> tuple[Principal | None, Principal | None]:
        before = asyncio.ensure_future(deps._look_up(request, "h"))
        await asyncio.to_thread(started.wait, 30)
        change = deps.forget_principals(request)
        next(change)  # the revoking route runs here
        after = await deps._look_up(request, "h")
        release.set()
        return await before, after

    first, second = asyncio.run(scenario())
    assert first == alice
    assert second is None
    assert cache.get("h") is None
