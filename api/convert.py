"""Conversions between the store's rows (base units) and the API's bodies (quantities)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC
from typing import Any

from pydantic_core import to_json
from sqlalchemy import DateTime, Row

from api.schemas import (
    FlavorOut,
    FlavorQuota,
    JobOut,
    LimitsOut,
    MemberBudgetOut,
    NodeOut,
    PriceOut,
    Quota,
    QuotaOut,
    TenantOut,
    UserLimitsBody,
    UserLimitsOut,
    WalletOut,
    WalletTransactionOut,
)
from quotas.money import format_credits
from quotas.quantity import cpu_to_milli, format_cpu, format_memory, memory_to_bytes
from store import controls
from store.cluster import GPU_PRODUCT_LABEL
from store.common import as_utc
from store.jobs import JobPage
from store.models import Flavor, Job, MemberBudget, Node, Price, Tenant, WalletTransaction
from store.prices import POSTPAID_KINDS
from store.tenants import Limits
from store.wallets import WalletView


def job_out(job: Job | Row[Any]) -> JobOut:
    """A job entity or a row of the jobs table (:func:`store.jobs.list_jobs`) as the API's body."""
    if isinstance(job, Row):
        row = job._mapping  # attribute access on a row costs a lookup by name each time
        values = {column: row[column] for column in _JOB_COLUMNS}
    else:
        values = {column: getattr(job, column) for column in _JOB_COLUMNS}
    return JobOut.model_validate(
        {
            **values,
            "cpu": format_cpu(job.cpu_milli),
            "memory": format_memory(job.memory_bytes),
        }
    )


_JOB_COLUMNS = (
    "id",
    "tenant",
    "user",
    "name",
    "image",
    "command",
    "args",
    "env",
    "flavor",
    "gpus",
    "workers",
    "priority",
    "max_runtime_seconds",
    "checkpoint_interval_seconds",
    "annotations",
    "status",
    "reason",
    "message",
    "queue_position",
    "attempts",
    "exit_code",
    "placement",
    "created_at",
    "admitted_at",
    "started_at",
    "finished_at",
    "held",
    "depends_on",
    "array_id",
    "array_index",
    "array_parallelism",
    "estimated_start",
    "estimate_is_bound",
)


_LIST_FIELDS = tuple(JobOut.model_fields)
"""A job body's keys, in the order the model serialises them."""
_DETAIL_ONLY = ("cost", "max_cost")
"""The body's last fields, filled by ``GET /v1/jobs/{id}`` alone: ``null`` in a list."""
_QUANTITY_SOURCES = {"cpu": "cpu_milli", "memory": "memory_bytes"}
JOB_LIST_COLUMNS = tuple(
    _QUANTITY_SOURCES.get(name, name) for name in _LIST_FIELDS[: -len(_DETAIL_ONLY)]
)
"""The jobs columns a page reads (:func:`store.jobs.list_jobs`), in the body's order."""
_DETAIL_NULLS = (None,) * len(_DETAIL_ONLY)
_CPU = JOB_LIST_COLUMNS.index("cpu_milli")
_MEMORY = JOB_LIST_COLUMNS.index("memory_bytes")
_DATETIMES = tuple(
    index
    for index, name in enumerate(JOB_LIST_COLUMNS)
    if isinstance(Job.__table__.c[name].type, DateTime)
)


def job_page_json(page: JobPage) -> bytes:
    """``JobPageOut(items=[job_out(row) ...]).model_dump_json()`` of a page read with
    :data:`JOB_LIST_COLUMNS`, without building and validating 50 models (most of a page's
    CPU): each row becomes the body's dict (quantities formatted, naive datetimes made UTC as
    :class:`api.schemas.Response` does) and pydantic's serialiser writes them all. The stored
    values were validated on the way in; tests/api/test_job_page_json.py holds the bytes
    equal to the models' for every optional field set and unset."""
    items = [_list_item(row) for row in page.items]
    return to_json({"items": items, "next_cursor": page.next_cursor})


def _list_item(row: Row[Any]) -> dict[str, Any]:
    values: list[Any] = [*row[:-1], *_DETAIL_NULLS]  # the row less its seq
    values[_CPU] = _cpu_text(values[_CPU])
    values[_MEMORY] = _memory_text(values[_MEMORY])
    for index in _DATETIMES:
        value = values[index]
        if value is not None and value.tzinfo is None:
            values[index] = value.replace(tzinfo=UTC)
    return dict(zip(_LIST_FIELDS, values, strict=True))


# A page's jobs mostly share a few shapes: formatting each quantity once is a twentieth of
# its CPU saved.
_cpu_text = functools.lru_cache(maxsize=1024)(format_cpu)
_memory_text = functools.lru_cache(maxsize=1024)(format_memory)


def flavor_out(flavor: Flavor) -> FlavorOut:
    return FlavorOut(
        name=flavor.name,
        node_labels=flavor.node_labels,
        cpu_per_gpu=format_cpu(flavor.cpu_milli_per_gpu),
        memory_per_gpu=format_memory(flavor.memory_bytes_per_gpu),
        created_at=flavor.created_at,
        stop_policy=flavor.stop_policy,
    )


def node_out(node: Node) -> NodeOut:
    return NodeOut(
        name=node.name,
        flavor=node.flavor,
        gpu_product=node.labels.get(GPU_PRODUCT_LABEL),
        labels=node.labels,
        gpu_capacity=node.gpu_capacity,
        gpu_allocatable=node.gpu_allocatable,
        gpu_allocated=node.gpu_allocated,
        cpu_allocatable=format_cpu(node.cpu_milli_allocatable),
        memory_allocatable=format_memory(node.memory_bytes_allocatable),
        ready=node.ready,
        schedulable=node.schedulable,
    )


def tenant_out(tenant: Tenant, quota: dict[str, dict[str, Limits]] | None = None) -> TenantOut:
    out = TenantOut.model_validate(tenant)
    if quota is not None:
        out.quota = quota_out(quota)
    out.user_limits = user_limits_out(controls.tenant_defaults(tenant))
    return out


def user_limits_out(limits: controls.Limits) -> UserLimitsOut:
    return UserLimitsOut(**controls.limits_detail(limits))


def user_limits_in(body: UserLimitsBody) -> controls.Limits:
    return controls.Limits(body.max_gpus, body.max_running_jobs, body.max_queued_jobs)


def quota_in(quota: Quota) -> dict[str, dict[str, Limits]]:
    result: dict[str, dict[str, Limits]] = {}
    for flavor, entry in quota.flavors.items():
        resources = _flavor_quota_in(entry)
        result[flavor] = resources
    return result


def _flavor_quota_in(entry: FlavorQuota) -> dict[str, Limits]:
    resources = {
        "gpu": Limits(entry.gpu.nominal, entry.gpu.borrowing_limit, entry.gpu.lending_limit)
    }
    if entry.cpu is not None:
        resources["cpu"] = Limits(
            cpu_to_milli(entry.cpu.nominal),
            _optional(cpu_to_milli, entry.cpu.borrowing_limit),
            _optional(cpu_to_milli, entry.cpu.lending_limit),
        )
    if entry.memory is not None:
        resources["memory"] = Limits(
            memory_to_bytes(entry.memory.nominal),
            _optional(memory_to_bytes, entry.memory.borrowing_limit),
            _optional(memory_to_bytes, entry.memory.lending_limit),
        )
    return resources


def _optional(convert: Callable[[str], int], value: str | None) -> int | None:
    return None if value is None else convert(value)


def quota_out(quota: dict[str, dict[str, Limits]]) -> QuotaOut:
    return QuotaOut(
        flavors={
            flavor: {resource: _limits_out(resource, limits) for resource, limits in res.items()}
            for flavor, res in quota.items()
        }
    )


def format_amount(resource: str, amount: int | None) -> int | str | None:
    if amount is None:
        return None
    if resource == "cpu":
        return format_cpu(amount)
    if resource == "memory":
        return format_memory(amount)
    return amount


def _limits_out(resource: str, limits: Limits) -> LimitsOut:
    nominal = format_amount(resource, limits.nominal)
    assert nominal is not None
    return LimitsOut(
        nominal=nominal,
        borrowing_limit=format_amount(resource, limits.borrowing_limit),
        lending_limit=format_amount(resource, limits.lending_limit),
    )


def price_out(row: Price) -> PriceOut:
    return PriceOut(
        flavor=row.flavor,
        tenant_kind=row.tenant_kind,
        effective_from=as_utc(row.effective_from),
        gpu_hour=format_credits(row.gpu_hour),
        cpu_hour=format_credits(row.cpu_hour),
        memory_gib_hour=format_credits(row.memory_gib_hour),
    )


def wallet_out(view: WalletView) -> WalletOut:
    return WalletOut(
        tenant=view.tenant,
        kind=view.kind,
        billing="postpaid" if view.kind in POSTPAID_KINDS else "prepaid",
        metered=view.metered,
        balance=format_credits(view.balance),
        credit_limit=format_credits(view.credit_limit),
        available=format_credits(view.available),
        on_exhausted=view.on_exhausted,
        require_cover=view.require_cover,
        members=[member_budget_out(m) for m in view.members],
    )


def member_budget_out(row: MemberBudget) -> MemberBudgetOut:
    return MemberBudgetOut(
        user=row.user,
        budget=format_credits(row.budget),
        spent=format_credits(row.spent),
        remaining=format_credits(row.budget - row.spent),
    )


def transaction_out(row: WalletTransaction) -> WalletTransactionOut:
    return WalletTransactionOut(
        id=row.id,
        kind=row.kind,
        amount=format_credits(row.amount),
        user=row.user,
        at=as_utc(row.at),
        actor=row.actor,
        note=row.note,
    )
