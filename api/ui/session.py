"""Portal sessions: a signed cookie naming a Yushan token by its hash, and CSRF tokens.

Signing in exchanges a Yushan token for the cookie ``yushan_session``: HMAC-SHA256-signed JSON
holding the token's SHA-256 (never the token), a random per-session CSRF token and the time it
was issued. Every request re-authenticates that hash exactly as a bearer token is (the same
principal cache, revocation and expiry: :func:`api.deps.principal_for_hash`), so revoking the
token or a membership ends or narrows the session at once. The cookie is ``HttpOnly``,
``SameSite=Strict``, limited to ``/ui``, ``Secure`` when the request came over https, and
expires after ``YUSHAN_SESSION_MAX_AGE_SECONDS``.

Every form carries the session's CSRF token in a hidden field, checked on every POST. The
sign-in form, which has no session yet, uses a signed nonce cookie (``yushan_sign_in``) and the
same nonce in the form (a signed double submit).

The signing key: ``YUSHAN_SESSION_SECRET``; else derived from the bootstrap token (the same in
every replica of a Helm install, and kept in ``var/admin-token`` by ``yushan serve``); else
random per process (sign-ins end when it restarts).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request, Response

from api.deps import SessionDep, principal_for_hash
from api.settings import ApiSettings
from store.users import Principal

SESSION_COOKIE = "yushan_session"
SIGN_IN_COOKIE = "yushan_sign_in"
SIGN_IN_MAX_AGE_SECONDS = 3600
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf"
log = logging.getLogger("yushan.api")


def session_key(settings: ApiSettings) -> bytes:
    """The HMAC key of the portal's cookies (see the module docstring for where it comes from)."""
    if settings.session_secret is not None:
        secret = settings.session_secret.get_secret_value().encode()
        return hashlib.sha256(b"yushan-portal-session\0" + secret).digest()
    if settings.bootstrap_token:
        token = settings.bootstrap_token.encode()
        return hmac.new(token, b"yushan-portal-session", hashlib.sha256).digest()
    log.warning(
        "neither YUSHAN_SESSION_SECRET nor YUSHAN_BOOTSTRAP_TOKEN is set: portal sign-ins are "
        "signed with a key of this process and end when it restarts"
    )
    return secrets.token_bytes(32)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs small JSON payloads for one ``purpose`` each, with their issue time."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    def _mac(self, payload: str) -> str:
        return _encode(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def sign(self, purpose: str, fields: dict[str, str]) -> str:
        body = {**fields, "p": purpose, "t": int(self._clock())}
        payload = _encode(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, purpose: str, value: str, max_age: float) -> dict[str, Any] | None:
        """The fields, or ``None`` if the value was not signed by us for ``purpose``, or is
        older than ``max_age`` seconds."""
        payload, _, mac = value.partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            body = json.loads(_decode(payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(body, dict) or body.get("p") != purpose:
            return None
        issued = body.get("t")
        if not isinstance(issued, int) or not 0 <= self._clock() - issued <= max_age:
            return None
        return body


@dataclass(frozen=True, slots=True)
class PortalUser:
    """The signed-in user: their principal (roles as for the API) and the session's CSRF token."""

    principal: Principal
    csrf: str


class SignInRequired(Exception):
    """No valid session: the portal sends the browser to the sign-in page."""


class CsrfRejected(Exception):
    """A POST without the session's CSRF token (answered 403, nothing done)."""


def signer(request: Request) -> Signer:
    found: Signer = request.app.state.portal_signer
    return found


def get_portal_user(request: Request, session: SessionDep) -> PortalUser:
    settings: ApiSettings = request.app.state.settings
    cookie = request.cookies.get(SESSION_COOKIE)
    body = None
    if cookie:
        body = signer(request).verify("session", cookie, settings.session_max_age_seconds)
    principal = None
    if body is not None and isinstance(body.get("h"), str):
        principal = principal_for_hash(request, session, body["h"])
    if body is None or principal is None:
        raise SignInRequired
    user = PortalUser(principal, str(body.get("c", "")))
    request.state.portal_user = user
    return user


PortalUserDep = Annotated[PortalUser, Depends(get_portal_user)]


async def form_fields(request: Request) -> dict[str, str]:
    """A urlencoded form body as a dict (the last value of a repeated field wins)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return {}
    body = await request.body()
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def checked_form(form: FormDep, user: PortalUserDep) -> dict[str, str]:
    """The form of a signed-in POST whose CSRF token is the session's (else 403)."""
    if not user.csrf or not hmac.compare_digest(
        form.get(CSRF_FIELD, "").encode(), user.csrf.encode()
    ):
        raise CsrfRejected
    return form


CheckedFormDep = Annotated[dict[str, str], Depends(checked_form)]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(request: Request, response: Response, token_hash: str) -> None:
    settings: ApiSettings = request.app.state.settings
    value = signer(request).sign("session", {"h": token_hash, "c": secrets.token_urlsafe(32)})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=settings.session_max_age_seconds,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)


def end_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )


def remember_sign_in_nonce(request: Request, response: Response, nonce: str) -> None:
    """Set the sign-in form's nonce, signed, in a short-lived cookie."""
    response.set_cookie(
        SIGN_IN_COOKIE,
        signer(request).sign("sign-in", {"n": nonce}),
        max_age=SIGN_IN_MAX_AGE_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def sign_in_nonce_matches(request: Request, form: dict[str, str]) -> bool:
    cookie = request.cookies.get(SIGN_IN_COOKIE, "")
    body = signer(request).verify("sign-in", cookie, SIGN_IN_MAX_AGE_SECONDS) if cookie else None
    given = form.get(CSRF_FIELD, "")
    return (
        body is not None
        and bool(given)
        and hmac.compare_digest(str(body.get("n", "")).encode(), given.encode())
    )
