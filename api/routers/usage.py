"""``/v1/usage``: usage reports from the ledger (``sreport``) and monthly statements.

Reports are JSON, or CSV with ``Accept: text/csv``. A platform admin sees every tenant; anyone
else the tenants they have a role in (``tenant`` narrows further). Money is shown as decimal
strings of credits; quantities as GPU-hours and GPU-, CPU- and GiB-seconds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.deps import READ_ROLES, PrincipalDep, SessionDep, require_tenant_role, visible_tenants
from api.params import TenantPath, TenantQuery
from api.problems import ApiProblem
from api.schemas import (
    StatementLineOut,
    StatementOut,
    UsageReportOut,
    UsageReportRow,
)
from quotas.money import format_credits
from store import ledger, tenants
from store.errors import InvalidRequest

router = APIRouter(prefix="/v1/usage", tags=["accounting"])

GroupQuery = Annotated[str, Query(max_length=40, pattern=r"^[a-z,]*$")]
MonthQuery = Annotated[str, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")]
CSV = "text/csv"


def _wants_csv(request: Request) -> bool:
    return CSV in request.headers.get("accept", "")


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return Response(buffer.getvalue(), media_type=f"{CSV}; charset=utf-8")


def _row_out(row: ledger.UsageRow) -> UsageReportRow:
    return UsageReportRow(
        **row.group,
        jobs=row.jobs,
        gpu_hours=round(row.gpu_ms / 3_600_000, 6),
        gpu_seconds=row.gpu_ms / 1000,
        cpu_seconds=row.cpu_milli_ms / 1_000_000,
        memory_gib_seconds=round(row.memory_mib_ms / 1024 / 1000, 6),
        lost_gpu_seconds=row.lost_gpu_ms / 1000,
        cost=format_credits(row.cost),
        credited=format_credits(row.credited),
        net=format_credits(row.net),
    )


def _total(rows: Sequence[ledger.UsageRow]) -> ledger.UsageRow:
    return ledger.UsageRow(
        {},
        sum(r.jobs for r in rows),
        sum(r.gpu_ms for r in rows),
        sum(r.cpu_milli_ms for r in rows),
        sum(r.memory_mib_ms for r in rows),
        sum(r.lost_gpu_ms for r in rows),
        sum(r.cost for r in rows),
        sum(r.credited for r in rows),
    )


@router.get("", response_model=UsageReportOut, response_model_by_alias=True)
def usage_report(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
    group_by: GroupQuery = "tenant",
    tenant: TenantQuery = None,
) -> Any:
    """Usage that ended in [from, to), summed per group (``tenant``, ``user``, ``flavor``)."""
    groups = [g for g in group_by.split(",") if g]
    if len(set(groups)) != len(groups):
        raise InvalidRequest("a group appears twice", field="query.group_by")
    scope = visible_tenants(principal)
    if tenant is not None:
        if scope is not None and tenant not in scope:
            raise ApiProblem(404, f"tenant {tenant!r} not found")
        scope = [tenant]
    rows = ledger.usage_report(session, start, end, groups, tenants=scope)
    # The total sums jobs per group: a job counted in two groups (two flavors) counts twice.
    report = UsageReportOut(
        from_=start,
        to=end,
        group_by=groups,
        rows=[_row_out(r) for r in rows],
        total=_row_out(_total(rows)),
    )
    if _wants_csv(request):
        columns = [*groups, *[f for f in UsageReportRow.model_fields if f not in ledger.GROUPS]]
        return _csv([r.model_dump() for r in report.rows], columns)
    return report


def statement_out(
    name: TenantPath,
    month: MonthQuery,
    session: SessionDep,
    principal: PrincipalDep,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> StatementOut:
    """The statement as ``GET /v1/usage/statements/{name}`` answers it. The portal's wallet
    page shows the same, one window of lines at a time (``offset``, ``limit``): building every
    line of a month with thousands of jobs to show 100 of them cost more than reading them;
    the totals are always the whole month's."""
    require_tenant_role(principal, name, READ_ROLES)
    tenants.get_tenant(session, name)
    result = ledger.statement(session, name, month, offset=offset, limit=limit)
    lines = [
        StatementLineOut(
            job_id=line.job_id,
            name=line.name,
            user=line.user,
            flavor=line.flavor,
            gpu_hours=round(line.gpu_ms / 3_600_000, 6),
            gpu_hour_price=format_credits(line.gpu_hour),
            cost=format_credits(line.cost),
            credited=format_credits(line.credited),
            net=format_credits(line.net),
        )
        for line in result.lines
    ]
    return StatementOut(
        tenant=name,
        month=month,
        jobs=result.jobs,
        lines=lines,
        gpu_hours=round(result.gpu_ms / 3_600_000, 6),
        cost=format_credits(result.cost),
        credited=format_credits(result.credited),
        net=format_credits(result.net),
        wallet_charges=None
        if result.wallet_charges is None
        else format_credits(result.wallet_charges),
    )


@router.get("/statements/{name}", response_model=StatementOut)
def statement(
    request: Request,
    name: TenantPath,
    month: MonthQuery,
    session: SessionDep,
    principal: PrincipalDep,
) -> Any:
    """One line per job with usage in the month (GPU-hours, price, cost, credited preemption
    losses) and totals, with the wallet's charges for the month to compare."""
    out = statement_out(name, month, session, principal)
    if _wants_csv(request):
        return _csv([line.model_dump() for line in out.lines], list(StatementLineOut.model_fields))
    return out
