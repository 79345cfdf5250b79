"""``whoami``, ``users``, ``tokens`` and ``login``: identities and the secrets that prove them.

A token's secret is printed once, by ``tokens create``, on standard output alone so that
``TOKEN=$(yushan tokens create alice)`` captures exactly the secret.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.commands import admin
from cli.commands.base import Context, Subparsers, add_command, add_group, parse_duration
from cli.config import ClientConfig, config_path, write_config_file
from cli.errors import EXIT_OK, EXIT_USAGE
from cli.output import Output, age, format_fields, format_table, relative_time


def register(subparsers: Subparsers) -> None:
    add_command(subparsers, "whoami", _whoami, "show who the token belongs to and their roles")

    users = add_group(subparsers, "users", "list and create users (platform admin)", default=_list)
    add_command(users, "list", _list, "list users")
    create = add_command(users, "create", _create, "create a user")
    create.add_argument("user", metavar="USER")
    create.add_argument("--admin", action="store_true", help="make them a platform admin")
    admin.add_user_commands(users)

    tokens = add_group(subparsers, "tokens", "issue, list and revoke a user's API tokens")
    issue = add_command(tokens, "create", _token_create, "issue a token (printed once)")
    issue.add_argument("user", metavar="USER")
    issue.add_argument("--description", default="", help="what the token is for")
    issue.add_argument(
        "--expires-in", type=parse_duration, metavar="DURATION", help="e.g. 3600, 12h, 30d"
    )
    add_command(tokens, "list", _token_list, "list a user's tokens").add_argument(
        "user", metavar="USER"
    )
    revoke = add_command(tokens, "revoke", _token_revoke, "revoke a token")
    revoke.add_argument("user", metavar="USER")
    revoke.add_argument("token_id", metavar="ID")
    revoke.add_argument(
        "--force",
        action="store_true",
        help="revoke even the last usable token of the last platform admin (locks admins out)",
    )

    login = subparsers.add_parser(
        "login",
        help="save the server URL and token to the config file (mode 0600)",
        description="Save --url and --token (or the current YUSHAN_URL/YUSHAN_TOKEN) to "
        "$YUSHAN_CONFIG or ~/.config/yushan/config.yaml, after checking them with the server.",
    )
    login.add_argument("--url", default=argparse.SUPPRESS, help="API server URL")
    login.add_argument("--token", default=argparse.SUPPRESS, help="API token")
    login.add_argument("--no-verify", action="store_true", help="save without asking the server")
    login.set_defaults(run=_login)


def _whoami(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.whoami(), identity)
    return EXIT_OK


def _list(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.list_users(), lambda u: users_table(u, ctx.out))
    return EXIT_OK


def _create(ctx: Context, args: argparse.Namespace) -> int:
    user = ctx.client.create_user(args.user, admin=args.admin)
    role = " (platform admin)" if user.get("is_admin") else ""
    ctx.out.emit(user, lambda u: f"created user {u['name']}{role}")
    return EXIT_OK


def _token_create(ctx: Context, args: argparse.Namespace) -> int:
    issued = ctx.client.create_token(
        args.user, description=args.description, expires_in_seconds=args.expires_in
    )
    if not ctx.out.structured:
        ctx.out.note(
            f"token {issued['id']} for {issued['user']}: store it now, it is not shown again"
        )
    ctx.out.emit(issued, lambda t: str(t["token"]))
    return EXIT_OK


def _token_list(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.list_tokens(args.user), lambda t: tokens_table(t, ctx.out))
    return EXIT_OK


def _token_revoke(ctx: Context, args: argparse.Namespace) -> int:
    token = ctx.client.revoke_token(args.user, args.token_id, force=args.force)
    ctx.out.emit(token, lambda t: f"revoked token {t['id']} of {t['user']}")
    return EXIT_OK


def _login(ctx: Context, args: argparse.Namespace) -> int:
    if not ctx.config.token:
        ctx.out.note("error: no token: pass --token or set YUSHAN_TOKEN")
        return EXIT_USAGE
    if not args.no_verify:
        me = ctx.client.whoami()
        ctx.out.note(f"logged in to {ctx.config.url} as {me.get('name')}")
    path = config_path(ctx.environ)
    write_config_file(path, ClientConfig(url=ctx.config.url, token=ctx.config.token))
    ctx.out.note(f"wrote {path}")
    return EXIT_OK


# -- rendering ----------------------------------------------------------------------------------


def identity(me: dict[str, Any]) -> str:
    roles: dict[str, str] = me.get("tenants") or {}
    tenants = ", ".join(f"{tenant} ({role})" for tenant, role in sorted(roles.items()))
    return format_fields(
        [("User", me.get("name")), ("Platform admin", bool(me.get("admin"))), ("Tenants", tenants)]
    )


def users_table(users: list[dict[str, Any]], out: Output) -> str:
    now = out.now()
    rows = [[u["name"], bool(u["is_admin"]), age(u["created_at"], now)] for u in users]
    return format_table(["NAME", "ADMIN", "AGE"], rows)


def tokens_table(tokens: list[dict[str, Any]], out: Output) -> str:
    now = out.now()
    rows = [
        [
            t["id"],
            t.get("description"),
            relative_time(t["created_at"], now),
            relative_time(t.get("expires_at"), now),
            relative_time(t.get("revoked_at"), now),
        ]
        for t in tokens
    ]
    return format_table(["ID", "DESCRIPTION", "CREATED", "EXPIRES", "REVOKED"], rows)
