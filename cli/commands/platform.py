"""``cohorts``, ``flavors``, ``cluster`` and ``audit``: the platform admin's view."""

from __future__ import annotations

import argparse
from typing import Any

from cli.commands import admin, queue_controls
from cli.commands.base import Context, Subparsers, add_command, add_group, parse_key_value
from cli.errors import EXIT_OK
from cli.output import Output, age, format_table, relative_time


def register(subparsers: Subparsers) -> None:
    cohorts = add_group(
        subparsers, "cohorts", "groups of tenants that share idle quota", default=_cohorts
    )
    add_command(cohorts, "list", _cohorts, "list cohorts")
    cohort = add_command(cohorts, "create", _cohort_create, "create a cohort (platform admin)")
    cohort.add_argument("cohort", metavar="NAME")
    cohort.add_argument("--parent", help="parent cohort, for nested sharing")
    admin.add_cohort_commands(cohorts)

    flavors = add_group(subparsers, "flavors", "GPU types and their node labels", default=_flavors)
    add_command(flavors, "list", _flavors, "list flavors")
    flavor = add_command(flavors, "create", _flavor_create, "create a flavor (platform admin)")
    flavor.add_argument("flavor", metavar="NAME")
    flavor.add_argument(
        "--label",
        type=parse_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="node label that selects this GPU type (repeat)",
    )
    flavor.add_argument("--cpu-per-gpu", help="default CPU per GPU (server default 4)")
    flavor.add_argument("--memory-per-gpu", help="default memory per GPU (server default 90Gi)")
    admin.add_allow_empty(flavor)
    admin.add_flavor_commands(flavors)
    queue_controls.register_stop_commands(flavors, "flavor")

    add_command(subparsers, "cluster", _cluster, "GPU capacity per flavor and node")

    audit = add_command(subparsers, "audit", _audit, "the log of administrative changes")
    audit.add_argument("--limit", type=int, default=50, help="entries per page (default 50)")
    audit.add_argument("--cursor", help="continue from a previous page's cursor")
    audit.add_argument("--all", action="store_true", help="follow every page to the end")
    admin.add_audit_filters(audit)


def _cohorts(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.list_cohorts(), lambda c: cohorts_table(c, ctx.out))
    return EXIT_OK


def _cohort_create(ctx: Context, args: argparse.Namespace) -> int:
    cohort = ctx.client.create_cohort(args.cohort, args.parent)
    ctx.out.emit(cohort, lambda c: f"created cohort {c['name']}")
    return EXIT_OK


def _flavors(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.list_flavors(), flavors_table)
    return EXIT_OK


def _flavor_create(ctx: Context, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.flavor, "node_labels": dict(args.label)}
    if args.cpu_per_gpu:
        body["cpu_per_gpu"] = args.cpu_per_gpu
    if args.memory_per_gpu:
        body["memory_per_gpu"] = args.memory_per_gpu
    if args.allow_empty:
        body["allow_empty"] = True
    flavor = ctx.client.create_flavor(body)
    ctx.out.emit(flavor, lambda f: f"created flavor {f['name']}")
    return EXIT_OK


def _cluster(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.cluster(), cluster_tables)
    return EXIT_OK


def _audit(ctx: Context, args: argparse.Namespace) -> int:
    filters = admin.audit_filters(args)
    page = ctx.client.list_audit(limit=args.limit, cursor=args.cursor, filters=filters)
    entries = page.items
    while args.all and page.next_cursor:
        page = ctx.client.list_audit(limit=args.limit, cursor=page.next_cursor, filters=filters)
        entries += page.items
    if page.next_cursor and not args.all:
        ctx.out.note(f"more entries: use --all, or --cursor {page.next_cursor}")
    ctx.out.emit(entries, lambda e: audit_table(e, ctx.out))
    return EXIT_OK


# -- rendering ----------------------------------------------------------------------------------


def cohorts_table(cohorts: list[dict[str, Any]], out: Output) -> str:
    now = out.now()
    rows = [[c["name"], c.get("parent"), age(c["created_at"], now)] for c in cohorts]
    return format_table(["NAME", "PARENT", "AGE"], rows)


def flavors_table(flavors: list[dict[str, Any]]) -> str:
    rows = [
        [
            f["name"],
            f["cpu_per_gpu"],
            f["memory_per_gpu"],
            f.get("stop_policy"),
            f.get("node_labels"),
        ]
        for f in flavors
    ]
    return format_table(["NAME", "CPU/GPU", "MEMORY/GPU", "STOP POLICY", "NODE LABELS"], rows)


def cluster_tables(cluster: dict[str, Any]) -> str:
    if not cluster.get("nodes"):
        return "no nodes reported by the scheduler yet"
    flavors = format_table(
        ["FLAVOR", "NODES", "READY", "GPU CAPACITY", "ALLOCATABLE", "ALLOCATED"],
        [
            [
                f["flavor"],
                f["nodes"],
                f["nodes_ready"],
                f["gpu_capacity"],
                f["gpu_allocatable"],
                f["gpu_allocated"],
            ]
            for f in cluster.get("flavors", [])
        ],
    )
    nodes = format_table(
        [
            "NODE",
            "FLAVOR",
            "GPU PRODUCT",
            "READY",
            "SCHEDULABLE",
            "GPUS",
            "ALLOCATED",
            "CPU",
            "MEMORY",
        ],
        [
            [
                n["name"],
                n.get("flavor"),
                n.get("gpu_product"),
                bool(n["ready"]),
                bool(n["schedulable"]),
                f"{n['gpu_allocatable']}/{n['gpu_capacity']}",
                n["gpu_allocated"],
                n.get("cpu_allocatable"),
                n.get("memory_allocatable"),
            ]
            for n in cluster.get("nodes", [])
        ],
    )
    labels = format_table(
        ["NODE", "LABELS"],
        [[n["name"], n.get("labels")] for n in cluster.get("nodes", [])],
    )
    return f"{flavors}\n\n{nodes}\n\n{labels}"


def audit_table(entries: list[dict[str, Any]], out: Output) -> str:
    now = out.now()
    rows = [
        [e["id"], relative_time(e["at"], now), e["actor"], e["action"], e["target"]]
        for e in entries
    ]
    return format_table(["ID", "WHEN", "ACTOR", "ACTION", "TARGET"], rows)
