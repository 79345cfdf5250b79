"""FastAPI dependencies: the database session and the authenticated caller.

Routes declare what they need with the ``Annotated`` aliases below (``SessionDep``,
``PrincipalDep``, ``AdminDep``); the session commits when the route returns normally and rolls
back on any error, so a failed request leaves nothing half-written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.authcache import PrincipalCache
from api.problems import ApiProblem
from api.queuecache import QueueCache
from api.settings import ApiSettings
from scheduler.policy import Policy
from store.common import utcnow
from store.db import SessionFactory
from store.submissions import SubmissionWriter
from store.users import Principal, authenticate_hash, hash_token

READ_ROLES = frozenset({"tenant-admin", "member", "viewer"})
SUBMIT_ROLES = frozenset({"tenant-admin", "member"})
MANAGE_ROLES = frozenset({"tenant-admin"})
T = TypeVar("T")


async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


async def get_policy(request: Request) -> Policy:
    """The scheduler's policy, built from the same ``YUSHAN_*`` settings as the loop's."""
    policy: Policy = request.app.state.policy
    return policy


def get_session(request: Request) -> Iterator[Session]:
    factory: SessionFactory = request.app.state.session_factory
    with factory() as session, session.begin():
        yield session


# scope="function": commit before the response is sent, so a 2xx always means "stored".
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def in_read_session(request: Request, work: Callable[[Session], T]) -> T:
    """``work``, which only reads, in a worker thread with a session of its own
    (:func:`store.db.read_session_factory`: autocommit, no BEGIN and COMMIT round trips). For
    the hot read routes: a sync route with ``SessionDep`` takes three trips to a worker thread
    (the dependency's enter and exit, the route), this one. Nothing written here would be
    rolled back: routes that write use :data:`SessionDep`."""
    factory: SessionFactory = request.app.state.read_session_factory

    def run() -> T:
        with factory() as session:
            return work(session)

    return await run_in_threadpool(run)


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
PolicyDep = Annotated[Policy, Depends(get_policy)]


async def get_queue_cache(request: Request) -> QueueCache:
    cache: QueueCache = request.app.state.queue_cache
    return cache


QueueCacheDep = Annotated[QueueCache, Depends(get_queue_cache)]


async def get_submission_writer(request: Request) -> SubmissionWriter:
    writer: SubmissionWriter = request.app.state.submission_writer
    return writer


SubmissionWriterDep = Annotated[SubmissionWriter, Depends(get_submission_writer)]


async def get_principal(request: Request) -> Principal:
    """The caller, from the principal cache without leaving the event loop; on a miss the token
    is checked in a worker thread with a session of its own (so routes that need no database
    session, like submissions, take none)."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiProblem(
            401,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = hash_token(secret.strip())
    hit, principal = _cached_principal(request, key)
    if not hit:
        principal = await _look_up(request, key)
    if principal is None:
        raise ApiProblem(
            401,
            "invalid, expired or revoked token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


async def _look_up(request: Request, key: str) -> Principal | None:
    """The token's principal from the database, cached. Requests that miss the cache together
    (under load, every request in flight when the entry expires) share one lookup instead of
    each queueing its own two queries for a worker thread."""
    lookups: dict[str, asyncio.Future[Principal | None]] = request.app.state.principal_lookups
    loop = asyncio.get_running_loop()
    lookup = lookups.get(key)
    if lookup is None or lookup.get_loop() is not loop:
        sessions: SessionFactory = request.app.state.session_factory

        async def look_up() -> Principal | None:
            principal = await run_in_threadpool(_authenticate, sessions, key)
            if lookups.get(key) is lookup:  # not dropped by forget_principals meanwhile
                _remember(request, key, principal)
            return principal

        lookup = lookups[key] = loop.create_task(look_up())
        lookup.add_done_callback(lambda done: _forget_lookup(lookups, key, done))
    # shield: a waiter that goes away (client disconnected) does not cancel the others' lookup
    return await asyncio.shield(lookup)


def _forget_lookup(
    lookups: dict[str, asyncio.Future[Principal | None]],
    key: str,
    done: asyncio.Future[Principal | None],
) -> None:
    if lookups.get(key) is done:
        del lookups[key]


def _authenticate(sessions: SessionFactory, key: str) -> Principal | None:
    with sessions() as session:
        return authenticate_hash(session, key)


def _remember(request: Request, key: str, principal: Principal | None) -> None:
    if principal is not None:
        cache: PrincipalCache = request.app.state.principal_cache
        cache.put(key, principal)


def _cached_principal(request: Request, key: str) -> tuple[bool, Principal | None]:
    """``(hit, principal)`` from the principal cache; a hit with ``None`` is a cached principal
    whose token has expired (the cache may outlive a token by its ttl: expiry is checked on
    every use)."""
    cache: PrincipalCache = request.app.state.principal_cache
    principal = cache.get(key)
    if principal is None:
        return False, None
    return True, None if principal.expired(utcnow()) else principal


def principal_for_hash(request: Request, session: Session, key: str) -> Principal | None:
    """The principal of the token whose hash is ``key`` (through the same cache), or ``None``
    when it is unknown, revoked or expired: how the portal's session cookie authenticates, in
    the route's own session."""
    hit, principal = _cached_principal(request, key)
    if not hit:
        principal = authenticate_hash(session, key)
        _remember(request, key, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def forget_principals(request: Request) -> Iterator[None]:
    """Drop cached principals around a change to tokens, memberships or tenants (after the
    route too, so a principal cached while the change was being committed does not survive)."""
    cache: PrincipalCache = request.app.state.principal_cache
    lookups: dict[str, asyncio.Future[Principal | None]] = request.app.state.principal_lookups
    cache.clear()
    lookups.clear()  # a request after the change must not join a lookup from before it
    yield
    cache.clear()
    lookups.clear()


ForgetPrincipals = Depends(forget_principals, scope="function")


async def require_admin(principal: PrincipalDep) -> Principal:
    return check_admin(principal)


def check_admin(principal: Principal) -> Principal:
    """403 unless the caller is a platform admin (the portal's admin pages check it too)."""
    if not principal.is_admin:
        raise ApiProblem(403, "this operation requires the platform admin role")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def visible_tenants(principal: Principal) -> list[str] | None:
    """Tenants whose objects the caller may see; ``None`` means all (platform admin)."""
    return None if principal.is_admin else sorted(principal.roles)


def require_tenant_role(principal: Principal, tenant: str, roles: frozenset[str]) -> None:
    """404 when the tenant is not the caller's at all, 403 when their role is too weak."""
    if principal.is_admin:
        return
    role = principal.roles.get(tenant)
    if role is None:
        raise ApiProblem(404, f"tenant {tenant!r} not found")
    if role not in roles:
        raise ApiProblem(
            403, f"your role {role!r} in tenant {tenant!r} does not allow this operation"
        )
