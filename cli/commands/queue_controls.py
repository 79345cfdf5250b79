"""Queue controls on the command line, Slurm-style:

- ``jobs hold|release JOB`` and ``jobs update JOB`` (``scontrol hold|release|update``);
- ``submit --dependency afterok:ID[:ID],afternotok:ID,afterany:ID`` (also in ``jobs update``),
  turned into the API's ``depends_on``;
- ``tenants hold|drain|open NAME`` and ``flavors hold|drain|open NAME`` (Kueue's
  ``stopPolicy``: ``hold``, ``hold_and_drain``, ``open``);
- ``submit --array 0-99%10`` (``array: {count: 100, parallelism: 10}``) and ``arrays
  get|cancel|hold|release ARRAY`` for a whole array;
- ``limits get TENANT`` and ``limits set TENANT [--user USER] --max-gpus N …`` (tenant defaults,
  or one user's overrides), ``limits unset TENANT --user USER``.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from cli.commands.base import Context, Subparsers, add_command, add_group, parse_duration
from cli.errors import EXIT_OK
from cli.output import format_table, relative_time

CONDITIONS = {"afterok": "succeeded", "afternotok": "failed", "afterany": "finished"}
STOP_COMMANDS = {"hold": "hold", "drain": "hold_and_drain", "open": "open"}
LIMITS = ("max_gpus", "max_running_jobs", "max_queued_jobs")
PRIORITIES = ("low", "normal", "high")


def parse_dependency(text: str) -> list[dict[str, str]]:
    """``afterok:ID[:ID…][,afternotok:ID…]`` as ``depends_on`` entries (argparse ``type``)."""
    entries: list[dict[str, str]] = []
    for part in text.split(","):
        kind, _, ids = part.strip().partition(":")
        condition = CONDITIONS.get(kind)
        if condition is None or not ids:
            raise argparse.ArgumentTypeError(
                f"invalid dependency {part!r}: use afterok:ID, afternotok:ID or afterany:ID "
                "(several IDs separated by ':', several kinds by ',')"
            )
        entries += [{"job": job, "condition": condition} for job in ids.split(":") if job]
    return entries


NO_LIMIT = "none"


def parse_time_limit(text: str) -> int | str:
    """A duration (``90``, ``15m``, ``12h``) or ``none`` to remove the limit."""
    return NO_LIMIT if text.strip().lower() == NO_LIMIT else parse_duration(text)


_ARRAY = re.compile(r"^0-(\d+)(?:%(\d+))?$")


def parse_array(text: str) -> dict[str, int]:
    """Slurm's ``0-99%10`` as ``{count: 100, parallelism: 10}`` (argparse ``type``)."""
    match = _ARRAY.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid array {text!r}: use 0-LAST or 0-LAST%PARALLEL (tasks are numbered from 0)"
        )
    array = {"count": int(match.group(1)) + 1}
    if match.group(2) is not None:
        array["parallelism"] = int(match.group(2))
    return array


def register_submit_options(submit: argparse.ArgumentParser) -> None:
    submit.add_argument(
        "--dependency",
        type=parse_dependency,
        metavar="afterok:ID[:ID],afternotok:ID,afterany:ID",
        help="start only after these jobs succeeded / failed / finished (adds to the spec's)",
    )
    submit.add_argument(
        "--array",
        type=parse_array,
        metavar="0-LAST[%%PARALLEL]",
        help="submit tasks 0..LAST (YUSHAN_ARRAY_INDEX), at most PARALLEL running; "
        "prints the array id",
    )


def apply_submit_options(spec: dict[str, Any], args: argparse.Namespace) -> None:
    if args.dependency:
        spec["depends_on"] = [*spec.get("depends_on", []), *args.dependency]
    if args.array:
        spec["array"] = args.array


def register_job_commands(jobs: Subparsers) -> None:
    for name, run, text in (
        ("hold", _hold, "keep a queued job from starting until released"),
        ("release", _release, "let a held job start again"),
    ):
        add_command(jobs, name, run, text).add_argument("job", metavar="JOB", help="job id")
    estimate = add_command(
        jobs, "estimate", _estimate, "project a queued job's start now (squeue --start)"
    )
    estimate.add_argument("job", metavar="JOB", help="job id")
    update = add_command(jobs, "update", _update, "change a queued job (scontrol update)")
    update.add_argument("job", metavar="JOB", help="job id")
    update.add_argument("--name", help="new job name")
    update.add_argument("--priority", choices=PRIORITIES, help="raising needs tenant-admin")
    update.add_argument(
        "--time-limit",
        type=parse_time_limit,
        metavar="DURATION|none",
        help="max runtime (e.g. 90m); raising it or 'none' needs tenant-admin",
    )
    update.add_argument(
        "--dependency",
        type=parse_dependency,
        metavar="afterok:ID,…",
        help="replace the job's dependencies",
    )
    update.add_argument(
        "--no-dependency", action="store_true", help="remove every dependency of the job"
    )


def register_stop_commands(group: Subparsers, kind: str) -> None:
    for command, policy in STOP_COMMANDS.items():
        what = {
            "hold": "admit nothing new; running jobs continue",
            "hold_and_drain": "admit nothing new and stop and requeue running jobs",
            "open": "admit jobs again",
        }[policy]
        parser = add_command(group, command, _stop_runner(kind, policy), f"{what} (platform admin)")
        parser.add_argument(kind, metavar="NAME")


def register(subparsers: Subparsers) -> None:
    arrays = add_group(subparsers, "arrays", "job arrays as a whole")
    for name, run, text in (
        ("get", _array_get, "an array's tasks and how many are in each status"),
        ("cancel", _array_action("cancel"), "cancel every unfinished task"),
        ("hold", _array_action("hold"), "hold every queued task"),
        ("release", _array_action("release"), "release every held task"),
    ):
        add_command(arrays, name, run, text).add_argument("array", metavar="ARRAY")
    limits = add_group(subparsers, "limits", "per-user limits inside a tenant")
    getter = add_command(limits, "get", _limits_get, "a tenant's defaults and per-user overrides")
    getter.add_argument("tenant", metavar="TENANT")
    setter = add_command(
        limits,
        "set",
        _limits_set,
        "set the tenant's defaults (platform admin) or, with --user, one user's overrides "
        "(tenant admin); unset limits are unlimited (defaults) or inherited (overrides)",
    )
    setter.add_argument("tenant", metavar="TENANT")
    setter.add_argument("--user", help="set this user's overrides instead of the defaults")
    for name in LIMITS:
        setter.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, metavar="N")
    unset = add_command(limits, "unset", _limits_unset, "remove a user's overrides")
    unset.add_argument("tenant", metavar="TENANT")
    unset.add_argument("--user", required=True)


# -- commands -----------------------------------------------------------------------------------


def _array_get(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.get_array(args.array), array_table)
    return EXIT_OK


def _array_action(action: str) -> Any:
    def run(ctx: Context, args: argparse.Namespace) -> int:
        array = ctx.client.array_action(args.array, action)
        ctx.out.emit(array, array_table)
        return EXIT_OK

    return run


def array_table(array: dict[str, Any]) -> str:
    statuses = ", ".join(f"{n} {s}" for s, n in sorted((array.get("statuses") or {}).items()))
    rows = [
        [t["array_index"], t["id"], t["status"], "yes" if t.get("held") else "", t.get("reason")]
        for t in array.get("tasks") or []
    ]
    head = (
        f"array {array['array_id']} ({array['tenant']}): {array['count']} tasks, "
        f"at most {array.get('parallelism')} running; {statuses}"
    )
    return head + "\n" + format_table(["INDEX", "JOB", "STATUS", "HELD", "REASON"], rows)


def _estimate(ctx: Context, args: argparse.Namespace) -> int:
    answer = ctx.client.estimate_job(args.job)

    def text(a: dict[str, Any]) -> str:
        if not a.get("estimated_start"):
            return str(a["message"])
        when = relative_time(a["estimated_start"], ctx.out.now())
        bound = " at the earliest" if a.get("estimate_is_bound") else ""
        return f"job {a['job_id']} is estimated to start {when}{bound} ({a['estimated_start']})"

    ctx.out.emit(answer, text)
    return EXIT_OK


def _hold(ctx: Context, args: argparse.Namespace) -> int:
    job = ctx.client.hold_job(args.job)
    ctx.out.emit(job, lambda j: f"job {j['id']} held")
    return EXIT_OK


def _release(ctx: Context, args: argparse.Namespace) -> int:
    job = ctx.client.release_job(args.job)
    ctx.out.emit(job, lambda j: f"job {j['id']} released")
    return EXIT_OK


def _update(ctx: Context, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.priority is not None:
        changes["priority"] = args.priority
    if args.time_limit is not None:
        changes["max_runtime_seconds"] = None if args.time_limit == NO_LIMIT else args.time_limit
    if args.no_dependency:
        changes["depends_on"] = []
    elif args.dependency is not None:
        changes["depends_on"] = args.dependency
    job = ctx.client.update_job(args.job, changes)
    ctx.out.emit(job, lambda j: f"job {j['id']} updated")
    return EXIT_OK


def _stop_runner(kind: str, policy: str) -> Any:
    def run(ctx: Context, args: argparse.Namespace) -> int:
        name = getattr(args, kind)
        if kind == "tenant":
            result = ctx.client.update_tenant(name, {"stop_policy": policy})
        else:
            result = ctx.client.update_flavor(name, {"stop_policy": policy})
        ctx.out.emit(result, lambda r: f"{kind} {r['name']} is now {r['stop_policy']}")
        return EXIT_OK

    return run


def _limits_get(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.emit(ctx.client.tenant_limits(args.tenant), limits_table)
    return EXIT_OK


def _limits_set(ctx: Context, args: argparse.Namespace) -> int:
    limits = {name: getattr(args, name) for name in LIMITS}
    if args.user is None:
        tenant = ctx.client.update_tenant(args.tenant, {"user_limits": limits})
        result = tenant["user_limits"]
        ctx.out.emit(result, lambda _: f"per-user defaults of {args.tenant} set")
    else:
        result = ctx.client.set_user_limits(args.tenant, args.user, limits)
        ctx.out.emit(result, lambda _: f"limits of {args.user} in {args.tenant} set")
    return EXIT_OK


def _limits_unset(ctx: Context, args: argparse.Namespace) -> int:
    ctx.client.delete_user_limits(args.tenant, args.user)
    ctx.out.emit(
        {"tenant": args.tenant, "user": args.user, "removed": True},
        lambda _: f"removed the limits of {args.user} in {args.tenant}",
    )
    return EXIT_OK


def limits_table(limits: dict[str, Any]) -> str:
    defaults = limits.get("defaults") or {}

    def cell(value: Any, inherited: Any) -> str:
        if value is None and inherited is None:
            return "-"
        return str(inherited) + " (default)" if value is None else str(value)

    rows = [["(default)", *(cell(defaults.get(n), None) for n in LIMITS)]]
    for user, own in (limits.get("users") or {}).items():
        rows.append([user, *(cell(own.get(n), defaults.get(n)) for n in LIMITS)])
    return format_table(["USER", "MAX GPUS", "MAX RUNNING JOBS", "MAX QUEUED JOBS"], rows)
