"""``/ui/tenants/{name}``: a tenant at a glance for its members and admins: the queue in
scheduling order with its ordering factors, members and roles, quota against use per flavor,
and decayed usage over time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import PolicyDep, QueueCacheDep, SessionDep
from api.params import TenantPath
from api.routers import queue as queue_routes
from api.routers import tenants as tenant_routes
from api.schemas import UsageOut
from api.ui.charts import QuotaBar, Run, decayed_usage_series, line_chart
from api.ui.render import is_htmx, page
from api.ui.routing import PortalRoute
from api.ui.session import PortalUserDep
from store import jobs
from store.common import as_utc

router = APIRouter(prefix="/ui/tenants", route_class=PortalRoute, include_in_schema=False)

USAGE_WINDOW_HALF_LIVES = 4
"""The usage chart spans this many half-lives (older runs weigh less than 1/16)."""


def quota_bars(usage: UsageOut) -> list[QuotaBar]:
    bars = []
    for flavor, resources in sorted(usage.flavors.items()):
        gpu = resources.get("gpu", {})
        borrowing = gpu.get("borrowing_limit")
        bars.append(
            QuotaBar(
                flavor=flavor,
                used=int(gpu.get("used") or 0),
                nominal=int(gpu.get("nominal") or 0),
                borrowing_limit=None if borrowing is None else int(borrowing),
            )
        )
    return bars


def usage_history(session: SessionDep, tenant: str, half_life: float) -> dict[str, Any]:
    now = time.time()
    window = USAGE_WINDOW_HALF_LIVES * half_life
    since = datetime.fromtimestamp(now - window, UTC)
    runs = [
        Run(as_utc(start).timestamp(), as_utc(end).timestamp() if end else None, gpus)
        for start, end, gpus in jobs.run_intervals(session, tenant, since)
    ]
    series = decayed_usage_series(runs, now, half_life, window)
    return {
        "chart": line_chart(series),
        "since": since,
        "now_value": series[-1][1],
        "days": window / 86400,
        "half_life_days": half_life / 86400,
    }


@router.get("/{name}")
def tenant_page(
    request: Request, name: TenantPath, session: SessionDep, user: PortalUserDep, policy: PolicyDep
) -> HTMLResponse:
    principal = user.principal
    tenant = tenant_routes.get_tenant(name, session, principal)
    usage = tenant_routes.get_usage(name, session, principal)
    return page(
        request,
        "tenant.html",
        title=f"Tenant {name}",
        tenant=tenant,
        members=tenant_routes.list_members(name, session, principal),
        bars=quota_bars(usage),
        usage=usage_history(session, name, policy.half_life_seconds),
    )


@router.get("/{name}/queue")
def tenant_queue(
    request: Request,
    name: TenantPath,
    session: SessionDep,
    user: PortalUserDep,
    policy: PolicyDep,
    cache: QueueCacheDep,
) -> HTMLResponse:
    """The waiting jobs with their ordering factors: the tenant page loads it after itself
    and refreshes it; a page of its own without script. It is ``GET /v1/tenants/{name}/queue``:
    the scheduler's explanation of the whole queue, computed once per change of the stored
    state and shared by every viewer (:mod:`api.queuecache`)."""
    queue = queue_routes.tenant_queue(name, session, user.principal, policy, cache)
    template = "tenant_queue_table.html" if is_htmx(request) else "tenant_queue.html"
    return page(request, template, title=f"Queue of tenant {name}", tenant=name, queue=queue)
