"""``yushan share``: the fair-share tree, like Slurm's ``sshare``.

One row per cohort, tenant and user, indented by depth: weight, nominal GPUs, GPUs held now and
how many are borrowed, the normalised share the scheduler orders by, decayed usage in GPU-hours
and the usage ratio (fraction of all usage / share: above 1 means it used more than its share
lately and waits behind those below 1). What each number means: ``GET /v1/share`` in
docs/api.md and :mod:`scheduler.fairshare`.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.commands.base import Context, Subparsers, add_command
from cli.errors import EXIT_OK
from cli.output import format_table, gpu_hours, percent


def register(subparsers: Subparsers) -> None:
    share = add_command(
        subparsers, "share", _share, "the fair-share tree: cohorts, tenants, users (like sshare)"
    )
    share.add_argument("--tenant", help="only this tenant (and its users)")


def _share(ctx: Context, args: argparse.Namespace) -> int:
    rows = ctx.client.share_tree()
    if args.tenant:
        rows = [
            r
            for r in rows
            if (r["kind"] == "tenant" and r["name"] == args.tenant)
            or (r["kind"] == "user" and r["parent"] == args.tenant)
        ]
    ctx.out.emit(rows, share_table)
    return EXIT_OK


def share_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no tenants"
    top = min(int(r["depth"]) for r in rows)
    headers = ["NAME", "KIND", "WEIGHT", "NOMINAL", "GPUS", "BORROWED", "SHARE", "USAGE"]
    table = [
        [
            "  " * (int(r["depth"]) - top) + str(r["name"]),
            r["kind"],
            r.get("weight"),
            r.get("nominal_gpus"),
            r["gpus"],
            r.get("borrowed_gpus"),
            percent(float(r["share"])),
            gpu_hours(float(r["usage_gpu_seconds"])),
            None if r.get("usage_ratio") is None else f"{float(r['usage_ratio']):.2f}x",
        ]
        for r in rows
    ]
    return format_table([*headers, "USAGE/SHARE"], table)
