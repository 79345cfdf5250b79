"""Templates, navigation, security headers and the HTML error pages of the portal.

``page`` renders a template with what every page needs (the signed-in user, the navigation,
the CSRF token) and the portal's headers: a Content-Security-Policy that allows only the
portal's own scripts and styles (htmx runs with ``allowEval: false``, so no inline script or
``eval`` is needed), no caching of pages that hold tenant data, no framing.

The navigation is data (:func:`navigation`), grouped by role, so a page is one more
:class:`NavItem` (each tenant of the user has its page and its wallet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.ui.session import PortalUser
from store.jobstates import FINAL_STATES, JobStatus
from store.users import Principal

TEMPLATES = Path(__file__).parent / "templates"
HTMX = "htmx-2.0.11.min.js"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
FINAL_STATUSES = frozenset(s.value for s in FINAL_STATES)
STATUSES = [s.value for s in JobStatus]


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    href: str
    group: str


def navigation(principal: Principal) -> list[NavItem]:
    """What the user may open: their jobs, their tenants and their wallets, and the admin
    pages for admins (who reach any tenant's page and wallet from the tenants list)."""
    items = [
        NavItem("My jobs", "/ui/jobs", "Research"),
        NavItem("Submit", "/ui/jobs/new", "Research"),
    ]
    tenants = sorted(principal.roles) if not principal.is_admin else []
    for tenant in tenants:
        items += [
            NavItem(f"Tenant {tenant}", f"/ui/tenants/{tenant}", "Tenants"),
            NavItem(f"Wallet {tenant}", f"/ui/tenants/{tenant}/wallet", "Tenants"),
        ]
    if principal.is_admin:
        items += [
            NavItem("Cluster", "/ui/admin/cluster", "Platform"),
            NavItem("Tenants & cohorts", "/ui/admin/tenants", "Platform"),
            NavItem("Fair share", "/ui/admin/share", "Platform"),
            NavItem("Audit log", "/ui/admin/audit", "Platform"),
        ]
    return items


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours else []
    parts += [f"{minutes}m"] if minutes and not days else []
    parts += [f"{secs}s"] if secs and not days and not hours else []
    return " ".join(parts) or "0s"


ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "svg"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters["when"] = _when
ENVIRONMENT.filters["duration"] = _duration
ENVIRONMENT.globals["htmx"] = HTMX
ENVIRONMENT.globals["final_statuses"] = FINAL_STATUSES
ENVIRONMENT.globals["statuses"] = STATUSES


def render(request: Request, template: str, context: dict[str, Any]) -> str:
    user: PortalUser | None = getattr(request.state, "portal_user", None)
    full = {
        "request": request,
        "user": user,
        "nav": navigation(user.principal) if user else [],
        "csrf": user.csrf if user else "",
        "path": request.url.path,
        **context,
    }
    return ENVIRONMENT.get_template(template).render(full)


def page(request: Request, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    """A rendered template (a whole page, or the fragment an htmx refresh asks for)."""
    return HTMLResponse(
        render(request, template, context), status_code=http_status, headers=SECURITY_HEADERS
    )


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Invalid request"}
    return page(
        request,
        "error.html",
        status,
        title=titles.get(status, "Error"),
        code=status,
        detail=detail,
    )
