"""Per-user limits inside a tenant and the parallelism of job arrays, as the cycle applies them.

Slurm's ``MaxTRESPerUser=gres/gpu`` and ``MaxJobsPerUser`` become, per (tenant, user), the GPUs
in use and the number of running jobs; a job that would take its user past either waits with
reason ``UserLimit`` even when quota and capacity would let it start. A tenant sets defaults and
a user may have overrides (:meth:`scheduler.model.QueueControls.limits_for`). An array's
``parallelism`` caps how many of its tasks hold resources at once (reason ``ArrayLimit``).

"Running" means admitted or running, exactly the jobs the cycle accounts as holding resources;
a preemptor is counted from the cycle it plans its preemption, since it will start next. The
limits are checked before quota, so a job over its user's limit never preempts anyone. Lowering
a limit below what a user runs stops nothing: their jobs finish, and new ones wait.

The queued-jobs limit (``max_queued_jobs``) is enforced at submission (the API answers 429).

The running jobs are counted only when a job with a limit or in an array is first looked at, so
a cycle without limits and arrays pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Mapping

from scheduler.model import JobState, QueueControls, UserLimits

USER_LIMIT = "UserLimit"
ARRAY_LIMIT = "ArrayLimit"


class Limiter:
    """Running GPUs and jobs per (tenant, user) and running tasks per array, kept up to date as
    the cycle admits jobs."""

    def __init__(self, controls: QueueControls, running: Mapping[str, JobState]) -> None:
        """``running``: the cycle's live map of jobs holding resources (admissions join it)."""
        self.controls = controls
        self.gpus: dict[tuple[str, str], int] = {}
        self.jobs: dict[tuple[str, str], int] = {}
        self.tasks: dict[str, int] = {}
        self._limits: dict[tuple[str, str], UserLimits] = {}
        self._running = running
        self._counted = False
        self._extra: list[JobState] = []
        """Jobs charged before the count that are not in ``running`` (preemptors)."""
        self._limited = bool(controls.user_limits or controls.user_overrides)

    def _count(self) -> None:
        if self._counted:
            return
        self._counted = True
        for job in (*self._running.values(), *self._extra):
            self._add(job)

    def limits(self, tenant: str, user: str) -> UserLimits:
        key = (tenant, user)
        limits = self._limits.get(key)
        if limits is None:
            limits = self._limits[key] = self.controls.limits_for(tenant, user)
        return limits

    def blocks(self, job: JobState) -> tuple[str, str] | None:
        """``(reason, message)`` if starting ``job`` would break a limit, else ``None``."""
        if job.array_id is None and not self._limited:
            return None
        self._count()
        if job.array_id is not None and job.array_parallelism is not None:
            running = self.tasks.get(job.array_id, 0)
            if running >= job.array_parallelism:
                return ARRAY_LIMIT, (
                    f"{running} task(s) of array {job.array_id} running, "
                    f"its parallelism is {job.array_parallelism}"
                )
        limits = self.limits(job.tenant, job.user)
        if limits.unlimited():
            return None
        key = (job.tenant, job.user)
        if limits.max_running_jobs is not None:
            jobs = self.jobs.get(key, 0)
            if jobs + 1 > limits.max_running_jobs:
                return USER_LIMIT, (
                    f"user {job.user} runs {jobs} job(s) in {job.tenant}, "
                    f"the limit is {limits.max_running_jobs} (max_running_jobs)"
                )
        if limits.max_gpus is not None:
            gpus = self.gpus.get(key, 0)
            wanted = job.demand.gpu * job.workers
            if gpus + wanted > limits.max_gpus:
                return USER_LIMIT, (
                    f"user {job.user} uses {gpus} GPUs in {job.tenant} and the job needs "
                    f"{wanted}, the limit is {limits.max_gpus} (max_gpus)"
                )
        return None

    def charge(self, job: JobState) -> None:
        """Count ``job`` as holding resources (already in ``running``, or a preemptor)."""
        if self._counted:
            self._add(job)
        elif job.id not in self._running:
            self._extra.append(job)

    def _add(self, job: JobState) -> None:
        key = (job.tenant, job.user)
        self.gpus[key] = self.gpus.get(key, 0) + job.demand.gpu * job.workers
        self.jobs[key] = self.jobs.get(key, 0) + 1
        if job.array_id is not None:
            self.tasks[job.array_id] = self.tasks.get(job.array_id, 0) + 1
