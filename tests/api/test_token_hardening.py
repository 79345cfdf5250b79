"""Tokens: expiry is exact despite the principal cache, revoking twice changes nothing, and the
last admin token cannot be revoked by accident."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api import deps
from store.common import utcnow
from tests.api.builders import ApiDriver
from tests.api.conftest import ADMIN_TOKEN
from tests.api.test_bad_input import assert_problem


def _revocations(api: ApiDriver) -> list[dict[str, object]]:
    entries = api.ok(api.get("/v1/audit"))["items"]
    return [e for e in entries if e["action"] == "token.revoke"]


def test_an_expired_token_is_refused_at_once_even_when_cached(
    api: ApiDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.ok(api.post("/v1/users", {"name": "alice"}), 201)
    issued = api.ok(api.post("/v1/users/alice/tokens", {"expires_in_seconds": 60}), 201)
    alice = api.as_token(issued["token"])
    assert alice.get("/v1/users/me").status_code == 200  # now cached for auth_cache_seconds
    later = utcnow() + timedelta(seconds=61)
    monkeypatch.setattr(deps, "utcnow", lambda: later)
    response = alice.get("/v1/users/me")
    assert_problem(response, 401)


def test_revoking_a_revoked_token_changes_nothing(api: ApiDriver) -> None:
    api.ok(api.post("/v1/users", {"name": "alice"}), 201)
    token_id = api.ok(api.post("/v1/users/alice/tokens", {}), 201)["id"]
    first = api.ok(api.request("DELETE", f"/v1/users/alice/tokens/{token_id}"))
    second = api.ok(api.request("DELETE", f"/v1/users/alice/tokens/{token_id}"))
    assert first["revoked_at"] == second["revoked_at"] is not None
    assert len(_revocations(api)) == 1


def test_the_last_admin_token_is_not_revoked_without_force(api: ApiDriver) -> None:
    bootstrap = api.ok(api.get("/v1/users/admin/tokens"))[0]["id"]
    body = assert_problem(
        api.request("DELETE", f"/v1/users/admin/tokens/{bootstrap}"), 409, "query.force"
    )
    assert "force=true" in body["detail"]
    assert api.get("/v1/users/me").status_code == 200
    assert _revocations(api) == []
    # With a second admin token the bootstrap token can go.
    spare = api.ok(api.post("/v1/users/admin/tokens", {"description": "spare"}), 201)
    api.ok(api.request("DELETE", f"/v1/users/admin/tokens/{bootstrap}"))
    assert api.get("/v1/users/me").status_code == 401
    other = api.as_token(spare["token"])
    # Now the spare is the last one: refused, unless forced.
    assert_problem(other.request("DELETE", f"/v1/users/admin/tokens/{spare['id']}"), 409)
    forced = other.request("DELETE", f"/v1/users/admin/tokens/{spare['id']}?force=true")
    assert forced.status_code == 200
    assert ADMIN_TOKEN  # the bootstrap secret is no longer usable either
