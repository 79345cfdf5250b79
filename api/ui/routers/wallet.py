"""``/ui/tenants/{name}/wallet``: a tenant's credits for its members and admins (and platform
admins): balance, credit limit and what is available, recent transactions, member budgets,
spend per day over the last 30 days (an SVG line), and the monthly statement with a month
picker.

Everything comes from the JSON API's functions with the signed-in principal
(``get_wallet``, ``list_transactions``, ``statement_out``), so roles and tenant isolation are
the API's: another tenant's wallet is a 404 page. The spend line is read from the ledger after
``get_wallet`` has checked the caller's role, grouped per UTC day by the rows' end, as the
statement counts them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.params import TenantPath
from api.routers import usage as usage_routes
from api.routers import wallets as wallet_routes
from api.ui.charts import LineChart, line_chart
from api.ui.render import page
from api.ui.routing import PortalRoute
from api.ui.session import PortalUserDep
from quotas.money import MICRO, format_credits
from store import ledger

router = APIRouter(prefix="/ui/tenants", route_class=PortalRoute, include_in_schema=False)

SPEND_DAYS = 30
RECENT_TRANSACTIONS = 20
STATEMENT_LINES = 100
"""Statement lines per page (a busy tenant has thousands of jobs in a month; only the page's
lines are read and built, the totals are always the whole month's)."""
MonthFilter = Annotated[str, Query(pattern=r"^([0-9]{4}-[0-9]{2})?$")]
OffsetFilter = Annotated[int, Query(ge=0, le=10_000_000)]


@dataclass(frozen=True, slots=True)
class SpendHistory:
    chart: LineChart
    first_day: datetime
    total: str
    peak: str
    days: int


def spend_history(session: SessionDep, tenant: str, today: datetime) -> SpendHistory:
    """Net spend per UTC day over the last ``SPEND_DAYS`` days, today included."""
    first_day = today - timedelta(days=SPEND_DAYS - 1)
    per_day = ledger.daily_spend(session, tenant, first_day, today + timedelta(days=1))
    days = [first_day + timedelta(days=i) for i in range(SPEND_DAYS)]
    spend = [per_day.get(round(day.timestamp() * 1000), 0) for day in days]
    series = [(day.timestamp(), amount / MICRO) for day, amount in zip(days, spend, strict=True)]
    return SpendHistory(
        line_chart(series),
        first_day,
        format_credits(sum(spend)),
        format_credits(max(spend)),
        SPEND_DAYS,
    )


@router.get("/{name}/wallet")
def wallet_page(
    request: Request,
    name: TenantPath,
    session: SessionDep,
    user: PortalUserDep,
    month: MonthFilter = "",
    offset: OffsetFilter = 0,
) -> HTMLResponse:
    principal = user.principal
    wallet = wallet_routes.get_wallet(name, session, principal)
    now = datetime.now(UTC)
    month = month or now.strftime("%Y-%m")
    transactions = wallet_routes.list_transactions(
        name, session, principal, limit=RECENT_TRANSACTIONS, cursor=None
    )
    statement = usage_routes.statement_out(
        name, month, session, principal, offset=offset, limit=STATEMENT_LINES
    )
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return page(
        request,
        "wallet.html",
        title=f"Wallet of tenant {name}",
        wallet=wallet,
        transactions=transactions.items,
        more_transactions=transactions.next_cursor is not None,
        spend=spend_history(session, name, today),
        statement=statement,
        offset=offset,
        page_size=STATEMENT_LINES,
        month=month,
    )
