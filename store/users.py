"""Users, tenant memberships and API tokens.

A token is ``ysh_<id>_<secret>``; only the SHA-256 of the whole string is stored, so a database
leak reveals no usable token. Tokens are 256-bit random, which is why a fast hash (not a password
hash) is the right choice: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.common import as_utc, utcnow
from store.errors import AlreadyExists, Conflict, InvalidRequest, NotFound
from store.models import Membership, Tenant, Token, User, UserLimit

ROLES = ("tenant-admin", "member", "viewer")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user, whether they are a platform admin, and their tenant roles."""

    user: str
    is_admin: bool
    roles: dict[str, str]
    token_id: str
    expires_at: datetime | None = None
    """When the token stops working (UTC); a cached principal is refused from then on."""

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: Token
    secret: str


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_user(session: Session, name: str, *, is_admin: bool = False) -> User:
    if session.get(User, name) is not None:
        raise AlreadyExists(f"user {name!r} already exists", field="name")
    user = User(name=name, is_admin=is_admin, created_at=utcnow())
    session.add(user)
    return user


def get_user(session: Session, name: str) -> User:
    user = session.get(User, name)
    if user is None:
        raise NotFound(f"user {name!r} not found")
    return user


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.name)).all()


def set_admin(session: Session, name: str, is_admin: bool) -> User:
    """Grant or withdraw the platform admin role; the last admin keeps it."""
    user = get_user(session, name)
    if user.is_admin and not is_admin:
        _refuse_losing_last_admin(session, name, "withdraw the admin role of")
    user.is_admin = is_admin
    return user


def delete_user(session: Session, name: str) -> int:
    """Delete a user with their memberships and tokens (which stop working at once); returns
    how many usable tokens were revoked. Their jobs stay, still naming them."""
    user = get_user(session, name)
    if user.is_admin:
        _refuse_losing_last_admin(session, name, "delete")
    now = utcnow()
    usable = sum(
        1
        for token in list_tokens(session, name)
        if token.revoked_at is None and (token.expires_at is None or as_utc(token.expires_at) > now)
    )
    session.execute(delete(Token).where(Token.user == name))
    session.execute(delete(Membership).where(Membership.user == name))
    session.execute(delete(UserLimit).where(UserLimit.user == name))
    session.delete(user)
    return usable


def _refuse_losing_last_admin(session: Session, name: str, verb: str) -> None:
    others = session.scalar(
        select(func.count()).select_from(User).where(User.is_admin.is_(True), User.name != name)
    )
    if not others:
        raise Conflict(
            f"{name!r} is the last platform admin: make another user admin "
            "(yushan users update OTHER --admin) before you " + verb + " them"
        )


def any_admin(session: Session) -> bool:
    return session.scalar(select(User.name).where(User.is_admin.is_(True)).limit(1)) is not None


def set_membership(session: Session, tenant: str, user: str, role: str) -> Membership:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", field="role")
    if session.get(Tenant, tenant) is None:
        raise NotFound(f"tenant {tenant!r} not found")
    get_user(session, user)
    membership = session.get(Membership, (user, tenant))
    if membership is None:
        membership = Membership(user=user, tenant=tenant, role=role)
        session.add(membership)
    else:
        membership.role = role
    return membership


def remove_membership(session: Session, tenant: str, user: str) -> None:
    membership = session.get(Membership, (user, tenant))
    if membership is None:
        raise NotFound(f"user {user!r} is not a member of tenant {tenant!r}")
    session.delete(membership)


def list_members(session: Session, tenant: str) -> Sequence[Membership]:
    return session.scalars(
        select(Membership).where(Membership.tenant == tenant).order_by(Membership.user)
    ).all()


def roles_of(session: Session, user: str) -> dict[str, str]:
    query = select(Membership.tenant, Membership.role).where(Membership.user == user)
    return dict(session.execute(query).all())


def issue_token(
    session: Session,
    user: str,
    *,
    description: str = "",
    expires_at: datetime | None = None,
    secret: str | None = None,
) -> IssuedToken:
    """Create a token; ``secret`` lets the bootstrap token be chosen by the operator."""
    get_user(session, user)
    token_id = secrets.token_hex(6)
    secret = secret or f"ysh_{token_id}_{secrets.token_urlsafe(32)}"
    token = Token(
        id=token_id,
        user=user,
        secret_hash=hash_token(secret),
        description=description,
        created_at=utcnow(),
        expires_at=expires_at,
        revoked_at=None,
    )
    session.add(token)
    return IssuedToken(token, secret)


def list_tokens(session: Session, user: str) -> Sequence[Token]:
    return session.scalars(select(Token).where(Token.user == user).order_by(Token.created_at)).all()


def get_token(session: Session, user: str, token_id: str) -> Token:
    token = session.get(Token, token_id)
    if token is None or token.user != user:
        raise NotFound(f"token {token_id!r} not found")
    return token


def revoke_token(session: Session, user: str, token_id: str) -> tuple[Token, bool]:
    """Revoke a token; the flag is False when it was already revoked (nothing changed)."""
    token = get_token(session, user, token_id)
    if token.revoked_at is not None:
        return token, False
    token.revoked_at = utcnow()
    return token, True


def admins_with_usable_tokens(session: Session, *, excluding_token: str) -> int:
    """How many platform admins hold a token that is neither revoked nor expired, not
    counting ``excluding_token`` (the one about to be revoked)."""
    now = utcnow()
    rows = session.execute(
        select(Token.user, Token.expires_at)
        .join(User, User.name == Token.user)
        .where(User.is_admin.is_(True), Token.revoked_at.is_(None), Token.id != excluding_token)
    ).all()
    return len({user for user, expires in rows if expires is None or as_utc(expires) > now})


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal a bearer token stands for, or ``None`` if it is unknown, revoked or expired."""
    return authenticate_hash(session, hash_token(secret))


def authenticate_hash(session: Session, secret_hash: str) -> Principal | None:
    """:func:`authenticate` by the token's hash (what a portal session cookie names, so the
    cookie never carries the token itself)."""
    row = session.execute(
        select(Token, User)
        .join(User, User.name == Token.user)
        .where(Token.secret_hash == secret_hash)
    ).first()
    if row is None:
        return None
    token, user = row
    now = utcnow()
    if token.revoked_at is not None:
        return None
    if token.expires_at is not None and as_utc(token.expires_at) <= now:
        return None
    expires_at = as_utc(token.expires_at) if token.expires_at is not None else None
    return Principal(user.name, user.is_admin, roles_of(session, user.name), token.id, expires_at)


def bootstrap_admin(session: Session, secret: str) -> bool:
    """Create user ``admin`` holding ``secret`` unless an admin exists; True if it was created."""
    if any_admin(session):
        return False
    if session.get(User, "admin") is None:
        create_user(session, "admin", is_admin=True)
    else:
        get_user(session, "admin").is_admin = True
    issue_token(session, "admin", description="bootstrap token", secret=secret)
    return True
