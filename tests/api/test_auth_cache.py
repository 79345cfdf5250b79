"""The principal cache: bounded staleness across processes, none within one."""

from __future__ import annotations

from sqlalchemy import Engine, event

from api.authcache import PrincipalCache
from store.users import Principal
from tests.api.builders import ApiDriver, a_job


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
    lookups: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM tokens" in statement:
            lookups.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(3):
            assert alice.get("/v1/jobs").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(lookups) == 1
