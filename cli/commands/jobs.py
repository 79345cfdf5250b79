"""``submit``, ``jobs list|get|cancel|events|logs|watch`` and the ``logs`` alias.

``jobs get`` leads with what a waiting user asks first, "why is my job pending": status, the
scheduler's reason and message, and the queue position. ``jobs watch`` polls until the job is
final and exits 0 only if it succeeded, so ``yushan jobs watch $JOB && next-step`` works.

``submit`` takes the spec from a file and lets flags override its fields (``--gpus``,
``--workers``, ``--image``, ``--time``, ``--name``, ``--tenant``); ``--wait`` then watches the
job to its end and ``--follow`` streams worker 0's log once it runs. ``logs --follow`` on a job
that has not started yet waits for it (saying why it waits) instead of failing.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

from cli.commands import queue_controls
from cli.commands.base import (
    Context,
    Subparsers,
    add_command,
    add_group,
    load_document,
    parse_duration,
    sent_from,
)
from cli.errors import EXIT_FAILURE, EXIT_OK, CliError
from cli.output import (
    Output,
    age,
    duration,
    format_fields,
    format_table,
    parse_time,
    relative_time,
)

JOB_STATUSES = ("queued", "admitted", "running", "succeeded", "failed", "cancelled", "preempted")
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


def register(subparsers: Subparsers) -> None:
    submit = add_command(subparsers, "submit", _submit, "submit a job from a YAML or JSON spec")
    submit.add_argument("file", metavar="FILE", help="job spec (YAML or JSON); '-' reads stdin")
    submit.add_argument("--tenant", help="submit to this tenant instead of the spec's")
    submit.add_argument("--name", help="use this job name instead of the spec's")
    submit.add_argument("--image", help="use this container image instead of the spec's")
    submit.add_argument("--gpus", type=int, metavar="N", help="GPUs per worker (overrides)")
    submit.add_argument("--workers", type=int, metavar="N", help="workers (overrides)")
    submit.add_argument(
        "--time",
        type=parse_duration,
        metavar="DURATION",
        help="time limit, e.g. 90m, 12h, 2d (overrides max_runtime_seconds)",
    )
    submit.add_argument(
        "--idempotency-key", help="a retried submit with the same key returns the same job"
    )
    then = submit.add_mutually_exclusive_group()
    then.add_argument(
        "--wait", action="store_true", help="then watch it to its end; exit 0 if it succeeded"
    )
    then.add_argument(
        "--follow", action="store_true", help="then stream worker 0's log once it runs"
    )
    submit.add_argument(
        "--interval", type=float, default=2.0, help="seconds between polls (default 2)"
    )
    queue_controls.register_submit_options(submit)

    jobs = add_group(subparsers, "jobs", "list, inspect, cancel and follow jobs")
    listing = add_command(jobs, "list", _list, "list jobs, newest first")
    listing.add_argument("--tenant", help="only this tenant's jobs")
    listing.add_argument(
        "--status", action="append", choices=JOB_STATUSES, help="only jobs in this status (repeat)"
    )
    owner = listing.add_mutually_exclusive_group()
    owner.add_argument("--user", help="only this user's jobs")
    owner.add_argument("--me", action="store_true", help="only my own jobs")
    listing.add_argument("--array", help="only the tasks of this job array")
    listing.add_argument(
        "--start",
        action="store_true",
        help="add the estimated start of queued jobs (like squeue --start)",
    )
    listing.add_argument("--limit", type=int, default=50, help="jobs per page (default 50)")
    listing.add_argument("--cursor", help="continue from a previous page's cursor")
    listing.add_argument("--all", action="store_true", help="follow every page to the end")

    for name, run, text in (
        ("get", _get, "show a job: status, why it waits, resources, times"),
        ("cancel", _cancel, "cancel a job that has not finished"),
        ("events", _events, "show a job's status history"),
    ):
        add_command(jobs, name, run, text).add_argument("job", metavar="JOB", help="job id")

    queue_controls.register_job_commands(jobs)
    _logs_arguments(add_command(jobs, "logs", _logs, "print a job's logs"))
    _logs_arguments(add_command(subparsers, "logs", _logs, "print a job's logs (jobs logs)"))

    watch = add_command(jobs, "watch", _watch, "follow a job until it ends; exit 0 if succeeded")
    watch.add_argument("job", metavar="JOB", help="job id")
    watch.add_argument(
        "--interval", type=float, default=2.0, help="seconds between polls (default 2)"
    )


def _logs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="job id")
    parser.add_argument("--worker", type=int, metavar="N", help="worker index (default: 0)")
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="wait for the job to start, then keep streaming until the pod ends",
    )
    parser.add_argument("--tail", type=int, metavar="LINES", help="only the last LINES lines")
    parser.add_argument(
        "--interval", type=float, default=2.0, help="seconds between polls while waiting"
    )


# -- commands -----------------------------------------------------------------------------------


OVERRIDES = {
    "tenant": "tenant",
    "name": "name",
    "image": "image",
    "gpus": "gpus",
    "workers": "workers",
    "time": "max_runtime_seconds",
}
"""``submit`` flag -> the spec field it replaces."""


def _submit(ctx: Context, args: argparse.Namespace) -> int:
    spec = load_document(args.file)
    for flag, field in OVERRIDES.items():
        if getattr(args, flag) is not None:
            spec[field] = getattr(args, flag)
    queue_controls.apply_submit_options(spec, args)
    with sent_from(args.file):
        job = ctx.client.submit_job(spec, idempotency_key=args.idempotency_key)
    if not (args.wait or args.follow):
        ctx.out.emit(job, lambda j: str(j.get("array_id") or j["id"]))
        return EXIT_OK
    ctx.out.note(f"submitted {job['id']}")
    if args.follow:
        _stream_when_started(ctx, str(job["id"]), worker=None, tail=None, interval=args.interval)
    return _watch_job(ctx, str(job["id"]), args.interval)


def _list(ctx: Context, args: argparse.Namespace) -> int:
    user = str(ctx.client.whoami()["name"]) if args.me else args.user
    filters: dict[str, Any] = {
        "tenant": args.tenant,
        "statuses": args.status,
        "user": user,
        "array_id": args.array,
    }
    if args.all:
        items = list(ctx.client.iter_jobs(**filters, page_size=args.limit))
    else:
        page = ctx.client.list_jobs(**filters, limit=args.limit, cursor=args.cursor)
        items = page.items
        if page.next_cursor:
            ctx.out.note(f"more jobs: use --all, or --cursor {page.next_cursor}")
    ctx.out.emit(items, lambda jobs: jobs_table(jobs, ctx.out, start=args.start))
    return EXIT_OK


def _get(ctx: Context, args: argparse.Namespace) -> int:
    job = ctx.client.get_job(args.job)
    ctx.out.emit(job, lambda j: job_details(j, ctx.out))
    return EXIT_OK


def _cancel(ctx: Context, args: argparse.Namespace) -> int:
    job = ctx.client.cancel_job(args.job)
    ctx.out.emit(job, lambda j: f"job {j['id']} {j['status']}")
    return EXIT_OK


def _events(ctx: Context, args: argparse.Namespace) -> int:
    events = ctx.client.job_events(args.job)
    ctx.out.emit(events, lambda e: events_table(e, ctx.out))
    return EXIT_OK


def _logs(ctx: Context, args: argparse.Namespace) -> int:
    if args.follow:
        _stream_when_started(ctx, args.job, args.worker, args.tail, args.interval)
        return EXIT_OK
    for chunk in ctx.client.stream_job_logs(args.job, worker=args.worker, tail_lines=args.tail):
        ctx.out.write(chunk)
    return EXIT_OK


STARTED = frozenset({"running", *FINAL_STATUSES})


def _stream_when_started(
    ctx: Context, job_id: str, worker: int | None, tail: int | None, interval: float
) -> None:
    """Wait (saying why, on stderr) until the job runs or ended, then stream its log."""
    seen: str | None = None
    while True:
        job = ctx.client.get_job(job_id)
        if job["status"] in STARTED:
            break
        line = status_line(job)
        if line != seen:
            ctx.out.note(f"waiting for the job to start: {line}")
            seen = line
        ctx.sleep(interval)
    try:
        chunks = ctx.client.stream_job_logs(job_id, worker=worker, follow=True, tail_lines=tail)
        for chunk in chunks:
            ctx.out.write(chunk)
    except CliError as error:
        if job["status"] == "running":
            raise
        ctx.out.note(f"no log: {error.message}")  # ended and its pods are gone


def _watch(ctx: Context, args: argparse.Namespace) -> int:
    return _watch_job(ctx, args.job, args.interval)


def _watch_job(ctx: Context, job_id: str, interval: float) -> int:
    seen: tuple[str, str] | None = None
    while True:
        job = ctx.client.get_job(job_id)
        state = (str(job["status"]), str(job.get("reason") or ""))
        if state != seen and not ctx.out.structured:
            ctx.out.line(status_line(job))
        seen = state
        if job["status"] in FINAL_STATUSES:
            if ctx.out.structured:
                ctx.out.emit(job, str)
            return EXIT_OK if job["status"] == "succeeded" else EXIT_FAILURE
        ctx.sleep(interval)


# -- rendering ----------------------------------------------------------------------------------


def status_line(job: dict[str, Any]) -> str:
    parts = [str(job["id"]), str(job["status"])]
    if job.get("queue_position") is not None:
        parts.append(f"#{job['queue_position']} in queue")
    if job.get("reason"):
        parts.append(f"{job['reason']}: {job.get('message') or ''}".rstrip(": "))
    if job.get("exit_code") is not None:
        parts.append(f"exit code {job['exit_code']}")
    return "  ".join(parts)


def gpu_summary(job: dict[str, Any]) -> str:
    workers = int(job.get("workers") or 1)
    if workers == 1:
        return str(job["gpus"])
    return f"{job['gpus']} per worker x {workers} workers = {int(job['gpus']) * workers}"


def time_limit(job: dict[str, Any], now: datetime) -> str:
    """``12h``, and for a running job when the limit ends it: ``12h (ends in 11h)``."""
    limit = job.get("max_runtime_seconds")
    if limit is None:
        return "none"
    started = job.get("started_at")
    if job.get("status") != "running" or not started:
        return duration(limit)
    ends = (parse_time(started) + timedelta(seconds=int(limit))).isoformat()
    return f"{duration(limit)} (ends {relative_time(ends, now)})"


def estimated_start(job: dict[str, Any], now: Any) -> str | None:
    """``in 2h``, ``in 2h (at the earliest)``, or nothing for a job without an estimate."""
    if job.get("status") != "queued" or not job.get("estimated_start"):
        return None
    text = relative_time(job["estimated_start"], now)
    return f"{text} (at the earliest)" if job.get("estimate_is_bound") else text


def dependency_summary(job: dict[str, Any]) -> str | None:
    dependencies = job.get("depends_on") or []
    if not dependencies:
        return None
    return ", ".join(f"{d['job']} ({d['condition']})" for d in dependencies)


def checkpoint_summary(job: dict[str, Any]) -> str:
    interval = job.get("checkpoint_interval_seconds")
    if interval is None:
        return "none (an evicted job restarts from the beginning)"
    return f"every {duration(interval)} (an evicted job loses at most that much work)"


def jobs_table(jobs: list[dict[str, Any]], out: Output, *, start: bool = False) -> str:
    if not jobs:
        return "no jobs"
    now = out.now()
    headers = ["ID", "TENANT", "USER", "NAME", "STATUS", "GPUS", "FLAVOR", "QUEUE", "AGE", "REASON"]
    if start:
        headers.insert(-1, "START")
    rows = [
        [
            job["id"],
            job["tenant"],
            job["user"],
            job["name"],
            job["status"],
            int(job["gpus"]) * int(job.get("workers") or 1),
            job["flavor"],
            job.get("queue_position"),
            age(job.get("created_at"), now),
            *([estimated_start(job, now)] if start else []),
            job.get("reason"),
        ]
        for job in jobs
    ]
    return format_table(headers, rows)


def job_details(job: dict[str, Any], out: Output) -> str:
    now = out.now()
    command = " ".join([*job.get("command", []), *job.get("args", [])])
    return format_fields(
        [
            ("Job", f"{job['id']}  ({job['name']})"),
            ("Tenant / user", f"{job['tenant']} / {job['user']}"),
            ("Status", job["status"]),
            ("Reason", job.get("reason")),
            ("Message", job.get("message")),
            ("Queue position", job.get("queue_position")),
            ("Estimated start", estimated_start(job, now)),
            ("Held", "yes (jobs release to let it start)" if job.get("held") else None),
            ("Depends on", dependency_summary(job)),
            ("Flavor", job["flavor"]),
            ("GPUs", gpu_summary(job)),
            ("CPU / memory", f"{job.get('cpu')} / {job.get('memory')} per worker"),
            ("Priority", job.get("priority")),
            ("Time limit", time_limit(job, now)),
            ("Checkpoints", checkpoint_summary(job)),
            ("Cost", cost_summary(job)),
            ("Image", job["image"]),
            ("Command", command),
            ("Attempts", job.get("attempts")),
            ("Exit code", job.get("exit_code")),
            ("Placement", job.get("placement")),
            ("Created", relative_time(job.get("created_at"), now)),
            ("Admitted", relative_time(job.get("admitted_at"), now)),
            ("Started", relative_time(job.get("started_at"), now)),
            ("Finished", relative_time(job.get("finished_at"), now)),
        ]
    )


def cost_summary(job: dict[str, Any]) -> str | None:
    """Credits so far and at most (``max_runtime_seconds`` at today's price)."""
    cost, most = job.get("cost"), job.get("max_cost")
    if cost is None:
        return None
    return f"{cost} credits so far" + (f", at most {most}" if most is not None else "")


def events_table(events: list[dict[str, Any]], out: Output) -> str:
    now = out.now()
    rows = [
        [
            relative_time(e["at"], now),
            e.get("from_status"),
            e["to_status"],
            e.get("reason"),
            e.get("message"),
        ]
        for e in events
    ]
    return format_table(["WHEN", "FROM", "TO", "REASON", "MESSAGE"], rows)
