"""Human-readable reasons for pending jobs (the machine-readable reason travels alongside)."""

from __future__ import annotations

import datetime as dt
import math

from quotas.tree import FlavorResource, QuotaTree
from scheduler.model import GPU, JobState
from scheduler.state import Request

_UNITS = {"gpu": "GPUs", "cpu": "millicores of CPU", "memory": "bytes of memory"}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_ORDINALS = [_ordinal(n) for n in range(1000)]


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th … 11th, 12th, 13th … 21st."""
    return _ORDINALS[n] if 0 <= n < len(_ORDINALS) else _ordinal(n)


def instant(seconds: float) -> str:
    if math.isinf(seconds):
        return "an unknown time (running jobs have no time limit)"
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wanted(job: JobState, request: Request, fr: FlavorResource) -> str:
    return f"{request.get(fr, 0)} {fr[0]} {_UNITS.get(fr[1], fr[1])}"


def quota_situation(job: JobState, request: Request, tree: QuotaTree) -> tuple[FlavorResource, str]:
    """The quota that is short and how it stands, e.g. "tenant at 16/16 nominal, cohort lends 0"."""
    short = [
        fr
        for fr, amount in request.items()
        if fr in tree.limited and amount > tree.available(job.tenant, fr)
    ]
    fr = short[0] if short else (job.flavor, GPU)
    used, nominal = tree.usage(job.tenant, fr), tree.nominal(job.tenant, fr)
    lends = tree.lent_by_cohort(job.tenant, fr)
    return fr, f"tenant at {used}/{nominal} nominal, cohort lends {lends}"


def quota_message(
    job: JobState, request: Request, tree: QuotaTree, situation: tuple[FlavorResource, str]
) -> str:
    fr, text = situation
    if request.get(fr, 0) > tree.potential(job.tenant, fr):
        return (
            f"never fits: {_wanted(job, request, fr)} exceed the most tenant {job.tenant} "
            f"may use ({tree.potential(job.tenant, fr)})"
        )
    return f"waiting for {_wanted(job, request, fr)}: {text}"


def capacity_message(job: JobState, free_gpus: int) -> str:
    gang = f" ({job.workers} workers x {job.demand.gpu})" if job.workers > 1 else ""
    return (
        f"waiting for {job.total().gpu} {job.flavor} GPUs{gang}: quota allows it, "
        f"{free_gpus} free on schedulable {job.flavor} nodes"
    )


def no_nodes_message(job: JobState) -> str:
    return (
        f"no node of the cluster belongs to flavor {job.flavor} (none carries its labels); "
        "the job waits until one joins"
    )
