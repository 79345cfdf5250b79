"""Job dependencies (Slurm's ``--dependency=afterok|afternotok|afterany``).

A queued job lists ``depends_on: [(job, condition)]``. Each dependency is met, still open, or can
never be met, judged from the status of the job it names (:attr:`QueueControls.outcomes`):

=============  ==========================  ==================================
condition      met when the job ends       never met when the job ends
=============  ==========================  ==================================
``succeeded``  succeeded                   failed or cancelled
``failed``     failed or cancelled         succeeded
``finished``   in any final state          (never: every end meets it)
=============  ==========================  ==================================

A job naming a job that no longer exists can never start either. The job starts once all its
dependencies are met; the first one that can never be met fails it with
``DependencyNeverSatisfied`` (the cycle reports the failure; :mod:`scheduler.gates`).

Submission refuses dependencies on other tenants' jobs and dependency cycles
(:mod:`store.controls`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from scheduler.model import Condition, Dependency

FINAL = frozenset({"succeeded", "failed", "cancelled"})


class Verdict(enum.Enum):
    MET = "met"
    OPEN = "open"
    NEVER = "never"


def judge(dependency: Dependency, outcomes: Mapping[str, str]) -> Verdict:
    """Whether one dependency is met, still open or can never be met."""
    status = outcomes.get(dependency.job_id)
    if status is None:
        return Verdict.NEVER
    if status not in FINAL:
        return Verdict.OPEN
    condition = dependency.condition
    if condition is Condition.FINISHED:
        return Verdict.MET
    succeeded = status == "succeeded"
    wanted = succeeded if condition is Condition.SUCCEEDED else not succeeded
    return Verdict.MET if wanted else Verdict.NEVER


def evaluate(
    dependencies: Sequence[Dependency], outcomes: Mapping[str, str]
) -> tuple[Verdict, str]:
    """The verdict over all of a job's dependencies, with a message for the job's reason."""
    waiting: list[str] = []
    for dependency in dependencies:
        verdict = judge(dependency, outcomes)
        if verdict is Verdict.NEVER:
            status = outcomes.get(dependency.job_id)
            ended = "no longer exists" if status is None else f"ended {status}"
            return Verdict.NEVER, (
                f"job {dependency.job_id} {ended}, so the dependency "
                f"'{dependency.condition.value}' can never be met"
            )
        if verdict is Verdict.OPEN:
            waiting.append(f"{dependency.job_id} ({dependency.condition.value})")
    if waiting:
        return Verdict.OPEN, "waiting for job(s) " + ", ".join(waiting)
    return Verdict.MET, ""
