"""``/v1/users``: users and their API tokens (a token's secret is shown once, at creation)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AdminDep, ForgetPrincipals, PrincipalDep, SessionDep
from api.params import TokenIdPath, UserPath
from api.problems import ApiProblem
from api.schemas import TokenCreate, TokenIssued, TokenOut, UserCreate, UserOut, UserPatch
from store import audit, users
from store.common import utcnow
from store.users import Principal

router = APIRouter(prefix="/v1/users", tags=["users"])


def _require_self_or_admin(principal: Principal, name: str) -> None:
    if not principal.is_admin and principal.user != name:
        raise ApiProblem(404, f"user {name!r} not found")


@router.post("", status_code=201)
def create_user(body: UserCreate, session: SessionDep, admin: AdminDep) -> UserOut:
    user = users.create_user(session, body.name, is_admin=body.admin)
    audit.record(session, admin.user, "user.create", body.name, admin=body.admin)
    session.flush()
    return UserOut.model_validate(user)


@router.get("")
def list_users(session: SessionDep, _: AdminDep) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in users.list_users(session)]


@router.get("/me")
def whoami(session: SessionDep, principal: PrincipalDep) -> dict[str, object]:
    return {"name": principal.user, "admin": principal.is_admin, "tenants": principal.roles}


@router.get("/{name}")
def get_user(name: UserPath, session: SessionDep, principal: PrincipalDep) -> UserOut:
    _require_self_or_admin(principal, name)
    return UserOut.model_validate(users.get_user(session, name))


@router.patch("/{name}", dependencies=[ForgetPrincipals])
def patch_user(name: UserPath, body: UserPatch, session: SessionDep, admin: AdminDep) -> UserOut:
    """Grant or withdraw the platform admin role; the last admin keeps it (409)."""
    user = users.set_admin(session, name, body.admin)
    audit.record(session, admin.user, "user.update", name, admin=body.admin)
    session.flush()
    return UserOut.model_validate(user)


@router.delete("/{name}", status_code=204, dependencies=[ForgetPrincipals])
def delete_user(name: UserPath, session: SessionDep, admin: AdminDep) -> Response:
    """Delete a user, their memberships and tokens (which stop working at once). Their jobs
    stay. The last platform admin cannot be deleted (409)."""
    revoked = users.delete_user(session, name)
    audit.record(session, admin.user, "user.delete", name, tokens_revoked=revoked)
    return Response(status_code=204)


@router.post("/{name}/tokens", status_code=201)
def create_token(
    name: UserPath, body: TokenCreate, session: SessionDep, principal: PrincipalDep
) -> TokenIssued:
    _require_self_or_admin(principal, name)
    expires_at = (
        utcnow() + timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None
    )
    issued = users.issue_token(session, name, description=body.description, expires_at=expires_at)
    audit.record(session, principal.user, "token.create", f"{name}/{issued.token.id}")
    session.flush()
    return TokenIssued.model_validate(
        {**TokenOut.model_validate(issued.token).model_dump(), "token": issued.secret}
    )


@router.get("/{name}/tokens")
def list_tokens(name: UserPath, session: SessionDep, principal: PrincipalDep) -> list[TokenOut]:
    _require_self_or_admin(principal, name)
    users.get_user(session, name)
    return [TokenOut.model_validate(t) for t in users.list_tokens(session, name)]


@router.delete("/{name}/tokens/{token_id}", dependencies=[ForgetPrincipals])
def revoke_token(
    name: UserPath,
    token_id: TokenIdPath,
    session: SessionDep,
    principal: PrincipalDep,
    force: Annotated[bool, Query()] = False,
) -> TokenOut:
    """Revoke a token. Revoking an already revoked token changes nothing (and is not audited
    again). Revoking the last usable token of the last platform admin would lock everyone out
    of administration: that is refused with 409 unless ``force=true``."""
    _require_self_or_admin(principal, name)
    token = users.get_token(session, name, token_id)
    if (
        token.revoked_at is None
        and not force
        and users.get_user(session, name).is_admin
        and users.admins_with_usable_tokens(session, excluding_token=token_id) == 0
    ):
        raise ApiProblem(
            409,
            f"token {token_id} is the last usable token of any platform admin: revoking it "
            "leaves nobody able to administer Yushan. Issue another admin token first, or "
            "repeat with force=true",
            errors=[{"field": "query.force", "message": "required to lock out all admins"}],
        )
    token, changed = users.revoke_token(session, name, token_id)
    if changed:
        audit.record(
            session, principal.user, "token.revoke", f"{name}/{token_id}", **_forced(force)
        )
    return TokenOut.model_validate(token)


def _forced(force: bool) -> dict[str, object]:
    return {"force": True} if force else {}
