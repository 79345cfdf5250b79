"""``prices``, ``wallet`` and ``usage``: what GPU time costs, who has credit, who used what.

``yushan usage report`` is ``sreport``: usage summed per tenant, user and flavor over a period
(``--csv`` for the API's CSV as is). ``yushan usage statement TENANT --month 2026-11`` lists one
line per job with its GPU-hours, price, cost and the credit given back for work lost to
preemption, with totals and the wallet's charges for the month. Amounts are credits as decimal
strings, exactly as the server computed them (never re-added here in floating point).
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.commands.base import Context, Subparsers, add_command, add_group, load_document, sent_from
from cli.errors import EXIT_OK
from cli.output import format_fields, format_table

USAGE_GROUPS = ("tenant", "user", "flavor")


def register(subparsers: Subparsers) -> None:
    prices = add_group(subparsers, "prices", "the price list (credits per hour)", default=_prices)
    show = add_command(prices, "list", _prices, "prices in effect (or --history)")
    for parser in (show,):
        parser.add_argument("--at", metavar="TIME", help="prices in effect then (RFC 3339)")
        parser.add_argument("--history", action="store_true", help="every price ever set")
    put = add_command(prices, "set", _set_prices, "add prices from a YAML/JSON file (admin)")
    put.add_argument("file", metavar="FILE", help="same shape as PUT /v1/prices; - for stdin")

    wallet = add_group(subparsers, "wallet", "a tenant's credits, transactions and budgets")
    add_command(
        wallet, "show", _wallet, "balance, credit limit, policy and member budgets"
    ).add_argument("tenant", metavar="TENANT")
    for name, kind, text in (
        ("topup", "topup", "add credits (platform admin)"),
        ("adjust", "adjustment", "correct the balance by AMOUNT, negative to deduct (admin)"),
    ):
        move = add_command(wallet, name, _credit, text)
        move.add_argument("tenant", metavar="TENANT")
        move.add_argument("amount", metavar="AMOUNT", help="credits, e.g. 1000 or -2.5")
        move.add_argument("--note", default="", help="why (kept with the transaction)")
        move.set_defaults(kind=kind)
    history = add_command(wallet, "transactions", _transactions, "newest transactions first")
    history.add_argument("tenant", metavar="TENANT")
    history.add_argument("--limit", type=int, default=50, help="how many (at most 500)")
    budget = add_command(wallet, "budget", _budget, "set a member's budget (tenant admin)")
    budget.add_argument("tenant", metavar="TENANT")
    budget.add_argument("user", metavar="USER")
    budget.add_argument("amount", metavar="AMOUNT", help="credits the member may spend")
    policy = add_command(wallet, "policy", _policy, "credit limit and policies (platform admin)")
    policy.add_argument("tenant", metavar="TENANT")
    policy.add_argument("--credit-limit", metavar="CREDITS", help="postpaid tenants only")
    policy.add_argument("--on-exhausted", choices=("finish", "stop"), help="running jobs then")
    policy.add_argument(
        "--require-cover",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="admit a job only when the credit covers its maximum cost",
    )

    usage = add_group(subparsers, "usage", "usage reports and monthly statements")
    report = add_command(usage, "report", _report, "usage per tenant, user, flavor (sreport)")
    report.add_argument("--from", dest="start", required=True, metavar="TIME", help="RFC 3339")
    report.add_argument("--to", dest="end", required=True, metavar="TIME", help="RFC 3339")
    report.add_argument("--by", default="tenant", help="comma-separated: tenant,user,flavor")
    report.add_argument("--tenant", help="only this tenant")
    report.add_argument("--csv", action="store_true", help="print the server's CSV")
    statement = add_command(usage, "statement", _statement, "a tenant's jobs and costs in a month")
    statement.add_argument("tenant", metavar="TENANT")
    statement.add_argument("--month", required=True, help="e.g. 2026-11")
    statement.add_argument("--csv", action="store_true", help="print the server's CSV")


# -- prices -------------------------------------------------------------------------------------


def _prices(ctx: Context, args: argparse.Namespace) -> int:
    listed = ctx.client.get_prices(
        at=getattr(args, "at", None), history=getattr(args, "history", False)
    )
    ctx.out.emit(listed, prices_table)
    return EXIT_OK


def _set_prices(ctx: Context, args: argparse.Namespace) -> int:
    document = load_document(args.file)
    with sent_from(args.file):
        listed = ctx.client.set_prices(document)
    ctx.out.emit(listed, prices_table)
    return EXIT_OK


def prices_table(listed: dict[str, Any]) -> str:
    rows = [
        (
            p["flavor"],
            p["tenant_kind"],
            p["gpu_hour"],
            p["cpu_hour"],
            p["memory_gib_hour"],
            p["effective_from"],
        )
        for p in listed["prices"]
    ]
    if not rows:
        return "no prices set: usage is ledgered at 0 credits (yushan prices set FILE)"
    headers = ("FLAVOR", "KIND", "GPU-HOUR", "CPU-HOUR", "GIB-HOUR", "SINCE")
    return format_table(headers, rows)


# -- wallets ------------------------------------------------------------------------------------


def _wallet(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.get_wallet(args.tenant), wallet_fields)
    return EXIT_OK


def wallet_fields(wallet: dict[str, Any]) -> str:
    metered = "yes" if wallet["metered"] else "no (not charged until a top-up or a policy)"
    text = format_fields(
        [
            ("Tenant", f"{wallet['tenant']} ({wallet['kind']}, {wallet['billing']})"),
            ("Metered", metered),
            ("Balance", wallet["balance"]),
            ("Credit limit", wallet["credit_limit"]),
            ("Available", wallet["available"]),
            ("When exhausted", f"running jobs {wallet['on_exhausted']}"),
            ("Require cover", "yes" if wallet["require_cover"] else "no"),
        ]
    )
    members = wallet["members"]
    if members:
        rows = [(m["user"], m["budget"], m["spent"], m["remaining"]) for m in members]
        text += "\n\n" + format_table(("MEMBER", "BUDGET", "SPENT", "REMAINING"), rows)
    return text


def _credit(ctx: Context, args: argparse.Namespace) -> int:
    entry = ctx.client.credit_wallet(args.tenant, args.kind, args.amount, args.note)
    ctx.out.emit(entry, lambda e: f"{e['kind']} of {e['amount']} credits to {args.tenant}")
    return EXIT_OK


def _transactions(ctx: Context, args: argparse.Namespace) -> int:
    page = ctx.client.wallet_transactions(args.tenant, limit=args.limit)
    rows = [
        (t["at"], t["kind"], t["amount"], t.get("user") or "", t["actor"], t["note"])
        for t in page.items
    ]
    headers = ("AT", "KIND", "AMOUNT", "MEMBER", "BY", "NOTE")
    ctx.out.emit(page.items, lambda _items: format_table(headers, rows))
    return EXIT_OK


def _budget(ctx: Context, args: argparse.Namespace) -> int:
    row = ctx.client.set_member_budget(args.tenant, args.user, args.amount)
    ctx.out.emit(
        row, lambda r: f"{r['user']} may spend {r['budget']} credits ({r['remaining']} left)"
    )
    return EXIT_OK


def _policy(ctx: Context, args: argparse.Namespace) -> int:
    policy: dict[str, Any] = {}
    if args.credit_limit is not None:
        policy["credit_limit"] = args.credit_limit
    if args.on_exhausted is not None:
        policy["on_exhausted"] = args.on_exhausted
    if args.require_cover is not None:
        policy["require_cover"] = args.require_cover
    ctx.out.emit(ctx.client.set_wallet_policy(args.tenant, policy), wallet_fields)
    return EXIT_OK


# -- usage --------------------------------------------------------------------------------------


def _report(ctx: Context, args: argparse.Namespace) -> int:
    params = {"from": args.start, "to": args.end, "group_by": args.by}
    if args.tenant:
        params["tenant"] = args.tenant
    if args.csv:
        ctx.out.write(ctx.client.usage_report(params, as_csv=True))
        return EXIT_OK
    ctx.out.emit(ctx.client.usage_report(params), report_table)
    return EXIT_OK


def report_table(report: dict[str, Any]) -> str:
    groups = [g.upper() for g in report["group_by"]]
    headers = (*groups, "JOBS", "GPU-HOURS", "LOST GPU-S", "COST", "CREDITED", "NET")

    def row(item: dict[str, Any], label: list[str]) -> tuple[Any, ...]:
        return (
            *label,
            item["jobs"],
            f"{item['gpu_hours']:.3f}",
            f"{item['lost_gpu_seconds']:.0f}",
            item["cost"],
            item["credited"],
            item["net"],
        )

    rows = [row(r, [r[g] for g in report["group_by"]]) for r in report["rows"]]
    total = ["TOTAL"] + [""] * (len(groups) - 1) if groups else []
    rows.append(row(report["total"], total))
    return format_table(headers, rows)


def _statement(ctx: Context, args: argparse.Namespace) -> int:
    if args.csv:
        ctx.out.write(ctx.client.usage_statement(args.tenant, args.month, as_csv=True))
        return EXIT_OK
    ctx.out.emit(ctx.client.usage_statement(args.tenant, args.month), statement_text)
    return EXIT_OK


def statement_text(statement: dict[str, Any]) -> str:
    headers = ("JOB", "NAME", "USER", "FLAVOR", "GPU-HOURS", "PRICE/H", "COST", "CREDITED", "NET")
    rows = [
        (
            line["job_id"],
            line["name"],
            line["user"],
            line["flavor"],
            f"{line['gpu_hours']:.3f}",
            line["gpu_hour_price"],
            line["cost"],
            line["credited"],
            line["net"],
        )
        for line in statement["lines"]
    ]
    rows.append(
        (
            "TOTAL",
            "",
            "",
            "",
            f"{statement['gpu_hours']:.3f}",
            "",
            statement["cost"],
            statement["credited"],
            statement["net"],
        )
    )
    charges = statement["wallet_charges"]
    footer = (
        "not metered (no wallet)" if charges is None else f"wallet charges this month: {charges}"
    )
    title = f"statement of {statement['tenant']} for {statement['month']}"
    return f"{title}\n{format_table(headers, rows)}\n{footer}"
