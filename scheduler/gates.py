"""What keeps a queued job out of the cycle before quota and capacity are looked at.

Before ordering the queue, the cycle (:func:`scheduler.cycle.schedule`) sets aside, in this
order of precedence, with the reason each then shows:

1. ``Held``: jobs held by their owner or a tenant admin (``POST /v1/jobs/{id}/hold``);
2. ``TenantHeld`` / ``FlavorHeld``: jobs of a tenant or flavor whose stop policy is ``hold`` or
   ``hold_and_drain`` (Kueue's ``stopPolicy``);
3. ``InsufficientCredits``: jobs of a metered tenant whose wallet has no credit left, or, for a
   tenant that admits a job only when its maximum cost is covered, whose
   ``max_runtime_seconds`` x price exceeds the credit available (or that have no time limit);
4. ``Dependency``: jobs whose dependencies are not all met yet (:mod:`scheduler.dependencies`);
   a job with a dependency that can never be met fails with ``DependencyNeverSatisfied``.

The credit check compares each job with the credit available when the cycle starts: jobs
admitted in the same cycle are not deducted from one another, so several may together exceed it
by up to their maximum costs (charging then stops at the wallet's policy). Tenants that are
neither out of credit nor requiring cover are not in ``controls.credits`` and cost nothing.

The jobs set aside are listed after the others, in queue order, with their reason; they take
no quota, no capacity and no reservation. Running jobs of a ``hold_and_drain`` tenant or flavor
are stopped (a preemption with reason ``Drained``; the loop requeues them without backoff).

When no job is held, no job has dependencies and nothing is stopped, the split is one quick
look at each job (about 70 ms over a million queued jobs) and the queue is passed on as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from quotas.money import format_credits
from scheduler.dependencies import Verdict, evaluate
from scheduler.model import (
    Credit,
    Fail,
    JobState,
    Preempt,
    PreemptionReason,
    QueueControls,
    StopPolicy,
)

HELD = "Held"
TENANT_HELD = "TenantHeld"
FLAVOR_HELD = "FlavorHeld"
DEPENDENCY = "Dependency"
DEPENDENCY_NEVER_SATISFIED = "DependencyNeverSatisfied"
INSUFFICIENT_CREDITS = "InsufficientCredits"


@dataclass(slots=True)
class Gated:
    eligible: Sequence[JobState]
    waiting: list[tuple[JobState, str, str]] = field(default_factory=list)
    """(job, reason, message) of the jobs set aside, in queue order."""
    failed: list[Fail] = field(default_factory=list)


def _stop_message(kind: str, name: str, policy: StopPolicy) -> str:
    return f"{kind} {name} is on {policy.value}: nothing new is admitted until it is opened"


_HELD = attrgetter("held")
_DEPENDS_ON = attrgetter("depends_on")


def gate(queued: Sequence[JobState], controls: QueueControls) -> Gated:
    """Split the queue into the jobs the cycle may consider and those set aside."""
    tenants = controls.tenant_stops
    flavors = controls.flavor_stops
    credits = controls.credits
    if (
        not tenants
        and not flavors
        and not credits
        and not any(map(_HELD, queued))
        and not any(map(_DEPENDS_ON, queued))
    ):
        return Gated(queued)
    gated = Gated([])
    eligible: list[JobState] = []
    for job in queued:
        short = _short_of_credit(job, credits[job.tenant]) if job.tenant in credits else None
        if not (
            job.held
            or job.depends_on
            or job.tenant in tenants
            or job.flavor in flavors
            or short is not None
        ):
            eligible.append(job)
        elif job.held:
            gated.waiting.append((job, HELD, "held; release it to let it start"))
        elif job.tenant in tenants:
            message = _stop_message("tenant", job.tenant, tenants[job.tenant])
            gated.waiting.append((job, TENANT_HELD, message))
        elif job.flavor in flavors:
            message = _stop_message("flavor", job.flavor, flavors[job.flavor])
            gated.waiting.append((job, FLAVOR_HELD, message))
        elif short is not None:
            gated.waiting.append((job, INSUFFICIENT_CREDITS, short))
        else:
            verdict, message = evaluate(job.depends_on, controls.outcomes)
            if verdict is Verdict.MET:
                eligible.append(job)
            elif verdict is Verdict.OPEN:
                gated.waiting.append((job, DEPENDENCY, message))
            else:
                gated.failed.append(Fail(job.id, DEPENDENCY_NEVER_SATISFIED, message))
    gated.eligible = eligible
    return gated


def _short_of_credit(job: JobState, credit: Credit) -> str | None:
    """Why the tenant's credit keeps the job out, or ``None`` when it does not."""
    available = format_credits(credit.available)
    if credit.available <= 0:
        return f"tenant {job.tenant} has no credit left ({available} available): top it up"
    if not credit.require_cover:
        return None
    cost = credit.max_cost(job)
    if cost is None:
        return (
            f"tenant {job.tenant} admits a job only when its maximum cost is covered: give it "
            "a time limit (max_runtime_seconds)"
        )
    if cost > credit.available:
        return (
            f"its maximum cost {format_credits(cost)} credits exceeds the {available} "
            f"available to tenant {job.tenant}"
        )
    return None


def drained(running: Iterable[JobState], controls: QueueControls) -> list[Preempt]:
    """Evictions of the running jobs of tenants and flavors on ``hold_and_drain``."""
    drain = StopPolicy.HOLD_AND_DRAIN
    tenants = {t for t, p in controls.tenant_stops.items() if p is drain}
    flavors = {f for f, p in controls.flavor_stops.items() if p is drain}
    if not tenants and not flavors:
        return []
    evictions = []
    for job in running:
        if job.tenant in tenants:
            kind, name = "tenant", job.tenant
        elif job.flavor in flavors:
            kind, name = "flavor", job.flavor
        else:
            continue
        message = f"{kind} {name} is draining (hold_and_drain): stopped and requeued"
        evictions.append(Preempt(job.id, PreemptionReason.DRAINED, "", message))
    return evictions
