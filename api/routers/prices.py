"""``/v1/prices``: the effective-dated price list (credits per GPU-, CPU- and GiB-hour per
flavor and tenant kind). Everyone signed in reads it; platform admins add prices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.convert import price_out
from api.deps import AdminDep, PrincipalDep, SessionDep
from api.schemas import PriceListIn, PriceListOut
from quotas.money import Rate
from store import audit, prices, tenants
from store.common import as_utc, utcnow
from store.errors import InvalidRequest

router = APIRouter(prefix="/v1/prices", tags=["accounting"])


@router.get("")
def get_prices(
    session: SessionDep,
    _principal: PrincipalDep,
    at: Annotated[datetime | None, Query()] = None,
    history: bool = False,
) -> PriceListOut:
    """The prices in effect at ``at`` (default now), or every price ever set (``history``)."""
    instant = as_utc(at) if at is not None else utcnow()
    rows = prices.price_history(session) if history else prices.prices_in_effect(session, instant)
    return PriceListOut(at=instant, prices=[price_out(row) for row in rows])


@router.put("")
def put_prices(body: PriceListIn, session: SessionDep, admin: AdminDep) -> PriceListOut:
    """Add prices from ``effective_from`` (default now) on; earlier intervals keep theirs."""
    known = {flavor.name for flavor in tenants.list_flavors(session)}
    for index, item in enumerate(body.prices):
        if item.flavor not in known:
            raise InvalidRequest(
                f"unknown flavor {item.flavor!r}", field=f"body.prices.{index}.flavor"
            )
    entries = [
        prices.PriceEntry(
            item.flavor, item.tenant_kind, Rate(item.gpu_hour, item.cpu_hour, item.memory_gib_hour)
        )
        for item in body.prices
    ]
    start = prices.set_prices(session, entries, effective_from=body.effective_from)
    audit.record(session, admin.user, "prices.set", "prices", **body.model_dump(mode="json"))
    return PriceListOut(
        at=start, prices=[price_out(row) for row in prices.prices_in_effect(session, start)]
    )
