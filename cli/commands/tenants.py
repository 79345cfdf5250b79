"""``tenants``, ``quota get|set`` and ``members``: who may use which GPUs, and how many.

``tenants queue NAME`` (and ``queue`` for the whole platform) shows waiting jobs in scheduling
order like Slurm's ``sprio``: by default what a waiting user asks, within 120 columns; with
``-o wide`` one column per ordering factor the server reports (with its unit), so a new factor
appears without a client change.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from cli.commands import admin, queue_controls
from cli.commands.base import (
    Context,
    Subparsers,
    add_command,
    add_group,
    load_document,
    sent_from,
)
from cli.errors import EXIT_OK
from cli.output import (
    Output,
    age,
    cell,
    duration,
    format_fields,
    format_table,
    gpu_hours,
    percent,
    relative_time,
    truncate,
)

ROLES = ("tenant-admin", "member", "viewer")
KINDS = ("academic", "industry", "government")
LIMIT_COLUMNS = ("nominal", "borrowing_limit", "lending_limit")
RESOURCE_ORDER = {"gpu": 0, "cpu": 1, "memory": 2}


def _by_resource(resources: dict[str, Any]) -> list[tuple[str, Any]]:
    """GPU first, then CPU and memory, then anything else in the server's order."""
    return sorted(resources.items(), key=lambda item: RESOURCE_ORDER.get(item[0], 3))


def register(subparsers: Subparsers) -> None:
    tenants = add_group(subparsers, "tenants", "list and inspect tenants", default=_list)
    add_command(tenants, "list", _list, "list the tenants you can see")
    for name, run, text in (
        ("get", _get, "show a tenant and its quota"),
        ("usage", _usage, "quota against what the tenant's running jobs hold"),
        ("queue", _queue, "the tenant's waiting jobs in scheduling order, with ordering factors"),
    ):
        add_command(tenants, name, run, text).add_argument("tenant", metavar="TENANT")
    create = add_command(tenants, "create", _create, "create a tenant (platform admin)")
    create.add_argument("tenant", metavar="TENANT")
    create.add_argument("--kind", choices=KINDS, required=True)
    create.add_argument("--cohort", help="the cohort it borrows from and lends to")
    create.add_argument("--weight", type=float, help="fair-share weight (default 1)")
    create.add_argument("--quota", metavar="FILE", help="quota body (YAML/JSON), '-' for stdin")
    admin.add_tenant_commands(tenants)
    queue_controls.register_stop_commands(tenants, "tenant")

    add_command(subparsers, "queue", _global_queue, "every waiting job in order (platform admin)")

    quota = add_group(subparsers, "quota", "show or replace a tenant's quota")
    add_command(quota, "get", _quota_get, "show a tenant's quota").add_argument(
        "tenant", metavar="TENANT"
    )
    setter = add_command(quota, "set", _quota_set, "replace a tenant's quota (platform admin)")
    setter.add_argument("tenant", metavar="TENANT")
    setter.add_argument("file", metavar="FILE", help="{flavors: {...}} as YAML/JSON; '-' stdin")

    members = add_group(subparsers, "members", "who belongs to a tenant, with which role")
    add_command(members, "list", _members_list, "list a tenant's members").add_argument(
        "tenant", metavar="TENANT"
    )
    adder = add_command(
        members, "add", _members_add, "add a user or change their role (default: member)"
    )
    adder.add_argument("tenant", metavar="TENANT")
    adder.add_argument("user", metavar="USER")
    adder.add_argument("role", metavar="ROLE", nargs="?", choices=ROLES, help=", ".join(ROLES))
    adder.add_argument("--role", dest="role_flag", choices=ROLES, help="same as ROLE")
    remover = add_command(members, "remove", _members_remove, "remove a user from a tenant")
    remover.add_argument("tenant", metavar="TENANT")
    remover.add_argument("user", metavar="USER")


# -- tenants ------------------------------------------------------------------------------------


def _list(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.list_tenants(), lambda t: tenants_table(t, ctx.out))
    return EXIT_OK


def _get(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.get_tenant(args.tenant), lambda t: tenant_details(t, ctx.out))
    return EXIT_OK


def _create(ctx: Context, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.tenant, "kind": args.kind}
    if args.cohort:
        body["cohort"] = args.cohort
    if args.weight is not None:
        body["weight"] = args.weight
    if args.quota:
        body["quota"] = load_document(args.quota)
    ctx.out.emit(ctx.client.create_tenant(body), lambda t: f"created tenant {t['name']}")
    return EXIT_OK


def _usage(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.tenant_usage(args.tenant), usage_table)
    return EXIT_OK


def _queue(ctx: Context, args: argparse.Namespace) -> int:
    entries = ctx.client.tenant_queue(args.tenant)
    ctx.out.emit(entries, lambda e: queue_table(e, ctx.out, all_tenants=False))
    return EXIT_OK


def _global_queue(ctx: Context, args: argparse.Namespace) -> int:
    entries = ctx.client.global_queue()
    ctx.out.emit(entries, lambda e: queue_table(e, ctx.out, all_tenants=True))
    return EXIT_OK


# -- quota and members --------------------------------------------------------------------------


def _quota_get(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.get_quota(args.tenant), quota_table)
    return EXIT_OK


def _quota_set(ctx: Context, args: argparse.Namespace) -> int:
    with sent_from(args.file):
        quota = ctx.client.set_quota(args.tenant, load_document(args.file))
    ctx.out.emit(quota, quota_table)
    return EXIT_OK


def _members_list(ctx: Context, args: argparse.Namespace) -> int:
    members = ctx.client.list_members(args.tenant)
    ctx.out.emit(
        members, lambda m: format_table(["USER", "ROLE"], [[x["user"], x["role"]] for x in m])
    )
    return EXIT_OK


def _members_add(ctx: Context, args: argparse.Namespace) -> int:
    role = args.role_flag or args.role or "member"
    member = ctx.client.add_member(args.tenant, args.user, role)
    ctx.out.emit(member, lambda m: f"{m['user']} is {m['role']} in {m['tenant']}")
    return EXIT_OK


def _members_remove(ctx: Context, args: argparse.Namespace) -> int:
    ctx.client.remove_member(args.tenant, args.user)
    ctx.out.emit(
        {"tenant": args.tenant, "user": args.user, "removed": True},
        lambda _: f"removed {args.user} from {args.tenant}",
    )
    return EXIT_OK


# -- rendering ----------------------------------------------------------------------------------


def tenants_table(tenants: list[dict[str, Any]], out: Output) -> str:
    now = out.now()
    rows = [
        [
            t["name"],
            t["kind"],
            t.get("cohort"),
            t["weight"],
            t["namespace"],
            age(t["created_at"], now),
        ]
        for t in tenants
    ]
    return format_table(["NAME", "KIND", "COHORT", "WEIGHT", "NAMESPACE", "AGE"], rows)


def tenant_details(tenant: dict[str, Any], out: Output) -> str:
    fields = format_fields(
        [
            ("Tenant", tenant["name"]),
            ("Kind", tenant["kind"]),
            ("Cohort", tenant.get("cohort")),
            ("Weight", tenant["weight"]),
            ("Namespace", tenant["namespace"]),
            ("Stop policy", tenant.get("stop_policy")),
            ("Age", age(tenant["created_at"], out.now())),
        ]
    )
    quota = tenant.get("quota")
    return f"{fields}\n\n{quota_table(quota)}" if quota else fields


def quota_table(quota: dict[str, Any]) -> str:
    flavors: dict[str, dict[str, dict[str, Any]]] = quota.get("flavors") or {}
    if not flavors:
        return "no quota"
    rows = [
        [flavor, resource, *(limits.get(column) for column in LIMIT_COLUMNS)]
        for flavor, resources in flavors.items()
        for resource, limits in _by_resource(resources)
    ]
    return format_table(["FLAVOR", "RESOURCE", "NOMINAL", "BORROWING LIMIT", "LENDING LIMIT"], rows)


def usage_table(usage: dict[str, Any]) -> str:
    flavors: dict[str, dict[str, dict[str, Any]]] = usage.get("flavors") or {}
    rows: list[list[Any]] = []
    for flavor, resources in flavors.items():
        for resource, values in _by_resource(resources):
            if resource == "jobs":
                rows.append([flavor, "active jobs", values.get("active"), None, None, None])
            else:
                limits = [values.get(column) for column in LIMIT_COLUMNS]
                rows.append([flavor, resource, values.get("used"), *limits])
    headers = ["FLAVOR", "RESOURCE", "USED", "NOMINAL", "BORROWING LIMIT", "LENDING LIMIT"]
    return format_table(headers, rows) if rows else "no quota and no usage"


QUEUE_WIDTH = 120
"""The default ``tenants queue`` table fits this many columns; ``-o wide`` shows everything."""


def factor_value(name: str, value: float, now: datetime) -> str:
    """An ordering factor with its unit (see docs/scheduling.md for what each one means)."""
    if name in ("tenant_usage", "user_usage", "entry_penalty"):
        return gpu_hours(value)
    if name == "age_seconds":
        return duration(value)
    if name == "submitted_at":
        return relative_time(datetime.fromtimestamp(value, UTC).isoformat(), now)
    if name == "tenant_drs":
        return percent(value / 1000)
    if name == "tenant_usage_ratio":
        return f"{value:.2f}x"
    if name in ("tenant_borrowing", "preempting", "starving"):
        return "yes" if value else "no"
    return cell(value)


def queue_table(entries: list[dict[str, Any]], out: Output, *, all_tenants: bool) -> str:
    """One row per waiting job in scheduling order.

    The default view is the questions a waiting user asks (where am I, for how long, is my
    tenant borrowing, how much has it used) in at most :data:`QUEUE_WIDTH` columns; ``-o wide``
    adds one column per ordering factor the server reports, each with its unit.
    """
    if not entries:
        return "no waiting jobs"
    now = out.now()
    if out.wide:
        return _wide_queue(entries, now)
    headers = ["POS", "JOB", *(["TENANT"] if all_tenants else []), "USER", "NAME", "GPUS"]
    headers += ["PRIO", "WAITING", "BORROWS", "USAGE", "REASON"]
    rows = []
    for e in entries:
        factors = e.get("factors") or {}
        rows.append(
            [
                e.get("position"),
                e.get("job_id"),
                *([e.get("tenant")] if all_tenants else []),
                e.get("user"),
                truncate(str(e.get("name") or ""), 20),
                int(e.get("gpus") or 0) * int(e.get("workers") or 1),
                e.get("priority"),
                duration(factors.get("age_seconds")),
                percent(factors["tenant_drs"] / 1000) if "tenant_drs" in factors else None,
                gpu_hours(factors.get("tenant_usage")),
                e.get("reason"),
            ]
        )
    table = format_table(headers, rows).splitlines()
    return "\n".join(truncate(line, QUEUE_WIDTH) for line in table)


def _wide_queue(entries: list[dict[str, Any]], now: datetime) -> str:
    factors = list(dict.fromkeys(name for e in entries for name in e.get("factors") or {}))
    factors = [name for name in factors if name != "priority"]  # the PRIORITY column says it
    headers = ["POS", "IN TENANT", "JOB", "TENANT", "USER", "NAME", "GPUS", "PRIORITY"]
    rows = [
        [
            e.get("position"),
            e.get("tenant_position"),
            e.get("job_id"),
            e.get("tenant"),
            e.get("user"),
            e.get("name"),
            f"{e.get('gpus')}x{e.get('workers') or 1}",
            e.get("priority"),
            *(
                factor_value(name, (e.get("factors") or {})[name], now)
                if name in (e.get("factors") or {})
                else None
                for name in factors
            ),
            e.get("reason"),
            e.get("message"),
        ]
        for e in entries
    ]
    names = factor_headers(factors, headers)
    return format_table([*headers, *names, "REASON", "MESSAGE"], rows)


def factor_headers(factors: list[str], taken: list[str]) -> list[str]:
    """``tenant_drs`` -> ``TENANT DRS``; a name that clashes with a job column gets ``FACTOR``."""
    names = [factor.upper().replace("_", " ") for factor in factors]
    return [f"{name} FACTOR" if name in taken else name for name in names]
