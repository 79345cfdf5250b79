"""The admin lifecycle: ``update`` and ``delete`` for tenants, cohorts, flavors and users,
``cohorts quota get|set``, ``flavors get``, ``cohorts get`` and the audit filters.

Each ``add_*`` function adds its subcommands to a group that :mod:`cli.commands.tenants`,
:mod:`cli.commands.platform` and :mod:`cli.commands.users` create, so those modules stay as they
were but for one call each. The server refuses what would leave state inconsistent with a 409
saying what to do (exit code 6): deleting a tenant with unfinished jobs (``--force`` cancels
them; the scheduler removes their pods), a flavor named by a quota or an unfinished job, a
cohort that still holds tenants or cohorts, the last platform admin.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from cli.commands.base import (
    Context,
    Subparsers,
    add_command,
    add_group,
    load_document,
    parse_duration,
    parse_key_value,
)
from cli.errors import EXIT_OK, EXIT_USAGE
from cli.output import Output, age, format_fields

KINDS = ("academic", "industry", "government")


# -- tenants ------------------------------------------------------------------------------------


def add_tenant_commands(tenants: Subparsers) -> None:
    update = add_command(
        tenants, "update", _tenant_update, "change a tenant's kind, cohort or weight (admin)"
    )
    update.add_argument("tenant", metavar="TENANT")
    update.add_argument("--kind", choices=KINDS)
    cohort = update.add_mutually_exclusive_group()
    cohort.add_argument("--cohort", help="move it to this cohort")
    cohort.add_argument("--no-cohort", action="store_true", help="take it out of its cohort")
    update.add_argument("--weight", type=float, help="fair-share weight")
    delete = add_command(
        tenants,
        "delete",
        _tenant_delete,
        "delete a tenant with its quota, members, jobs and usage (admin)",
    )
    delete.add_argument("tenant", metavar="TENANT")
    delete.add_argument(
        "--force",
        action="store_true",
        help="cancel its unfinished jobs first (the scheduler removes their pods)",
    )


def _tenant_update(ctx: Context, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    if args.kind:
        changes["kind"] = args.kind
    if args.cohort:
        changes["cohort"] = args.cohort
    if args.no_cohort:
        changes["cohort"] = None
    if args.weight is not None:
        changes["weight"] = args.weight
    if not changes:
        return _nothing_to_change(ctx, "--kind, --cohort, --no-cohort or --weight")
    tenant = ctx.client.update_tenant(args.tenant, changes)
    ctx.out.emit(tenant, lambda t: f"updated tenant {t['name']}")
    return EXIT_OK


def _tenant_delete(ctx: Context, args: argparse.Namespace) -> int:
    ctx.client.delete_tenant(args.tenant, force=args.force)
    _deleted(ctx.out, "tenant", args.tenant)
    return EXIT_OK


# -- cohorts ------------------------------------------------------------------------------------


def add_cohort_commands(cohorts: Subparsers) -> None:
    add_command(cohorts, "get", _cohort_get, "show a cohort and its quota").add_argument(
        "cohort", metavar="NAME"
    )
    update = add_command(
        cohorts, "update", _cohort_update, "move a cohort or set how its weights are set (admin)"
    )
    update.add_argument("cohort", metavar="NAME")
    parent = update.add_mutually_exclusive_group()
    parent.add_argument("--parent", help="the cohort it nests in")
    parent.add_argument("--no-parent", action="store_true", help="make it a top-level cohort")
    update.add_argument(
        "--weights-from-allocation",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="its tenants' fair-share weights follow this month's allocations (top-ups)",
    )
    add_command(
        cohorts, "delete", _cohort_delete, "delete an empty cohort and its quota (admin)"
    ).add_argument("cohort", metavar="NAME")
    quota = add_group(cohorts, "quota", "show or replace a cohort's own quota")
    add_command(quota, "get", _cohort_quota_get, "show a cohort's quota").add_argument(
        "cohort", metavar="NAME"
    )
    setter = add_command(
        quota, "set", _cohort_quota_set, "replace a cohort's quota (platform admin)"
    )
    setter.add_argument("cohort", metavar="NAME")
    setter.add_argument("file", metavar="FILE", help="{flavors: {...}} as YAML/JSON; '-' stdin")


def _cohort_get(ctx: Context, args: argparse.Namespace) -> int:
    from cli.commands.tenants import quota_table

    cohort = ctx.client.get_cohort(args.cohort)
    cohort["quota"] = ctx.client.get_cohort_quota(args.cohort)
    now = ctx.out.now()

    def details(c: dict[str, Any]) -> str:
        fields = format_fields(
            [("Cohort", c["name"]), ("Parent", c.get("parent")), ("Age", age(c["created_at"], now))]
        )
        return f"{fields}\n\n{quota_table(c['quota'])}"

    ctx.out.emit(cohort, details)
    return EXIT_OK


def _cohort_update(ctx: Context, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    if args.parent or args.no_parent:
        changes["parent"] = None if args.no_parent else args.parent
    if args.weights_from_allocation is not None:
        changes["weights_from_allocation"] = args.weights_from_allocation
    if not changes:
        return _nothing_to_change(ctx, "--parent, --no-parent or --[no-]weights-from-allocation")
    cohort = ctx.client.update_cohort(args.cohort, changes)
    where = f"under {cohort['parent']}" if cohort.get("parent") else "at the top level"
    weights = (
        "; its tenants' weights follow their allocations"
        if cohort.get("weights_from_allocation")
        else ""
    )
    ctx.out.emit(cohort, lambda c: f"cohort {c['name']} is now {where}{weights}")
    return EXIT_OK


def _cohort_delete(ctx: Context, args: argparse.Namespace) -> int:
    ctx.client.delete_cohort(args.cohort)
    _deleted(ctx.out, "cohort", args.cohort)
    return EXIT_OK


def _cohort_quota_get(ctx: Context, args: argparse.Namespace) -> int:
    from cli.commands.tenants import quota_table

    ctx.out.emit(ctx.client.get_cohort_quota(args.cohort), quota_table)
    return EXIT_OK


def _cohort_quota_set(ctx: Context, args: argparse.Namespace) -> int:
    from cli.commands.tenants import quota_table

    quota = ctx.client.set_cohort_quota(args.cohort, load_document(args.file))
    ctx.out.emit(quota, quota_table)
    return EXIT_OK


# -- flavors ------------------------------------------------------------------------------------


def add_allow_empty(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="accept labels that select no node the scheduler has seen (nodes not joined yet)",
    )


def add_flavor_commands(flavors: Subparsers) -> None:
    add_command(flavors, "get", _flavor_get, "show a flavor").add_argument("flavor", metavar="NAME")
    update = add_command(
        flavors,
        "update",
        _flavor_update,
        "change a flavor's labels or per-GPU defaults (admin; defaults apply to new jobs)",
    )
    update.add_argument("flavor", metavar="NAME")
    update.add_argument(
        "--label",
        type=parse_key_value,
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="node label that selects this GPU type (repeat; replaces all labels)",
    )
    update.add_argument("--cpu-per-gpu", help="default CPU per GPU")
    update.add_argument("--memory-per-gpu", help="default memory per GPU")
    add_allow_empty(update)
    add_command(
        flavors, "delete", _flavor_delete, "delete a flavor no quota or unfinished job uses"
    ).add_argument("flavor", metavar="NAME")


def _flavor_get(ctx: Context, args: argparse.Namespace) -> int:
    from cli.commands.platform import flavors_table

    ctx.out.emit(ctx.client.get_flavor(args.flavor), lambda f: flavors_table([f]))
    return EXIT_OK


def _flavor_update(ctx: Context, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    if args.label is not None:
        changes["node_labels"] = dict(args.label)
    if args.cpu_per_gpu:
        changes["cpu_per_gpu"] = args.cpu_per_gpu
    if args.memory_per_gpu:
        changes["memory_per_gpu"] = args.memory_per_gpu
    if not changes:
        return _nothing_to_change(ctx, "--label, --cpu-per-gpu or --memory-per-gpu")
    if args.allow_empty:
        changes["allow_empty"] = True
    flavor = ctx.client.update_flavor(args.flavor, changes)
    ctx.out.emit(flavor, lambda f: f"updated flavor {f['name']}")
    return EXIT_OK


def _flavor_delete(ctx: Context, args: argparse.Namespace) -> int:
    ctx.client.delete_flavor(args.flavor)
    _deleted(ctx.out, "flavor", args.flavor)
    return EXIT_OK


# -- users --------------------------------------------------------------------------------------


def add_user_commands(users: Subparsers) -> None:
    update = add_command(users, "update", _user_update, "grant or withdraw platform admin")
    update.add_argument("user", metavar="USER")
    role = update.add_mutually_exclusive_group(required=True)
    role.add_argument("--admin", dest="admin", action="store_true", help="make them admin")
    role.add_argument("--no-admin", dest="admin", action="store_false", help="withdraw it")
    add_command(
        users,
        "delete",
        _user_delete,
        "delete a user, their memberships and tokens (which stop working at once)",
    ).add_argument("user", metavar="USER")


def _user_update(ctx: Context, args: argparse.Namespace) -> int:
    user = ctx.client.update_user(args.user, admin=args.admin)
    role = "a platform admin" if user.get("is_admin") else "not a platform admin"
    ctx.out.emit(user, lambda u: f"{u['name']} is {role}")
    return EXIT_OK


def _user_delete(ctx: Context, args: argparse.Namespace) -> int:
    ctx.client.delete_user(args.user)
    _deleted(ctx.out, "user", args.user)
    return EXIT_OK


# -- audit --------------------------------------------------------------------------------------


def add_audit_filters(audit: argparse.ArgumentParser) -> None:
    audit.add_argument("--actor", help="only changes made by this user")
    audit.add_argument(
        "--action", help="only this action, or a prefix of whole words: tenant, tenant.quota"
    )
    audit.add_argument(
        "--since", type=parse_moment, metavar="TIME", help="ISO 8601 time, or a duration ago (2h)"
    )
    audit.add_argument(
        "--until", type=parse_moment, metavar="TIME", help="ISO 8601 time, or a duration ago"
    )


def audit_filters(args: argparse.Namespace) -> dict[str, str]:
    """The query parameters of the audit filters given on the command line."""
    names = ("actor", "action", "since", "until")
    return {name: getattr(args, name) for name in names if getattr(args, name, None)}


def parse_moment(text: str, now: datetime | None = None) -> str:
    """``2026-11-30T12:00:00Z`` (UTC when no zone) or a duration ago (``90m``, ``2d``), as the
    ISO 8601 time the API takes (argparse ``type``)."""
    try:
        seconds = parse_duration(text)
    except argparse.ArgumentTypeError:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError as error:
            raise argparse.ArgumentTypeError(
                f"invalid time {text!r}: use ISO 8601 (2026-11-30T12:00:00Z) or a duration "
                "ago (90m, 12h, 2d)"
            ) from error
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
    return ((now or datetime.now(UTC)) - timedelta(seconds=seconds)).isoformat()


# -- shared -------------------------------------------------------------------------------------


def _deleted(out: Output, kind: str, name: str) -> None:
    out.emit({"kind": kind, "name": name, "deleted": True}, lambda _: f"deleted {kind} {name}")


def _nothing_to_change(ctx: Context, flags: str) -> int:
    ctx.out.note(f"error: nothing to change: give {flags}")
    return EXIT_USAGE
