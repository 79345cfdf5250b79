"""``/ui/sign-in`` and ``/ui/sign-out``: exchange a Yushan token for a session cookie."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.ui.render import page, redirect
from api.ui.routing import PortalRoute
from api.ui.session import (
    CheckedFormDep,
    FormDep,
    end_session,
    remember_sign_in_nonce,
    sign_in_nonce_matches,
    start_session,
)
from store.users import authenticate, hash_token

router = APIRouter(prefix="/ui", route_class=PortalRoute, include_in_schema=False)


@router.get("/")
def home() -> Response:
    return redirect("/ui/jobs")


def _sign_in_form(request: Request, status: int = 200, error: str = "") -> HTMLResponse:
    nonce = secrets.token_urlsafe(32)
    response = page(request, "sign_in.html", status, title="Sign in", error=error, nonce=nonce)
    remember_sign_in_nonce(request, response, nonce)
    return response


@router.get("/sign-in")
def sign_in_page(request: Request) -> HTMLResponse:
    return _sign_in_form(request)


@router.post("/sign-in", response_model=None)
def sign_in(request: Request, form: FormDep, session: SessionDep) -> Response:
    if not sign_in_nonce_matches(request, form):
        return _sign_in_form(request, 403, "The form expired: sign in again.")
    token = form.get("token", "").strip()
    if not token or authenticate(session, token) is None:
        return _sign_in_form(request, 401, "This token is unknown, revoked or expired.")
    response = redirect("/ui/jobs")
    start_session(request, response, hash_token(token))
    return response


@router.post("/sign-out")
def sign_out(request: Request, _: CheckedFormDep) -> Response:
    response = redirect("/ui/sign-in")
    end_session(request, response)
    return response
