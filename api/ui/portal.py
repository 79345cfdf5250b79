"""Mount the portal on the application: static files, the routers and the cookie signer."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.settings import ApiSettings
from api.ui.routers import admin, auth, jobs, tenants, wallet
from api.ui.session import Signer, session_key

STATIC = Path(__file__).parent / "static"


def install_portal(app: FastAPI, settings: ApiSettings) -> None:
    app.state.portal_signer = Signer(session_key(settings))
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="portal-static")
    for module in (auth, jobs, tenants, wallet, admin):
        app.include_router(module.router)
