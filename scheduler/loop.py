"""The scheduler loop: observe the cluster, run the pure cycle, persist decisions, dispatch.

One iteration (:meth:`SchedulerLoop.run_once`), in order:

1. **Observe** the cluster: nodes (capacity, readiness, usage of foreign pods) and every
   Yushan-managed gang of pods.
2. **Record the inventory** in the database (``/v1/cluster`` and submit-time fit checks read it).
3. **Apply observations** to admitted and running jobs: all workers running → ``running``; all
   succeeded → ``succeeded``; a worker failed → ``failed`` (the rest of the gang deleted); a
   node lost → requeued with backoff, or ``failed`` past the retry limit.
4. **Snapshot** the store and run the pure cycle (:func:`scheduler.cycle.run_cycle`).
5. **Persist decisions** in one transaction *before* touching the cluster: admissions with their
   placement, preemptions (requeued with backoff), deadline failures, queue positions and
   reasons. The database is the source of truth: if the process dies after this commit, the
   next iteration finds admitted jobs without pods and dispatches them again.
6. **Dispatch**: create the pods of every admitted job that lacks them (idempotent: pod names
   are deterministic), delete the pods of jobs that were cancelled, preempted or failed.
7. **Decay usage**: fold the GPUs each tenant and user holds into their decayed usage.

Pods that linger after their job stopped (terminating, or not yet deleted) keep counting as
used capacity on their nodes, so GPUs are free only once the pods are really gone.

A job row changed concurrently (e.g. a user cancelled it while the cycle ran) makes the version
check fail; the iteration's writes are rolled back and the next iteration starts from the new
state, so no update is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from k8s.client import ClusterClient
from k8s.errors import ClusterError
from k8s.types import GangObservation, NodeInfo, WorkloadSpec
from quotas.decay import decay
from scheduler import metrics
from scheduler.backoff import requeue_delay
from scheduler.cycle import run_cycle
from scheduler.logs import log_context
from scheduler.model import CycleResult, Demand, NodeState, Snapshot
from scheduler.policy import Policy
from scheduler.snapshots import build_snapshot
from store import cluster as cluster_store
from store import jobs as job_store
from store import tenants as tenant_store
from store.common import as_utc
from store.db import SessionFactory, transaction
from store.errors import InvalidTransition
from store.jobstates import ACTIVE_STATES, FINAL_STATES, JobStatus
from store.models import Flavor, Job

log = logging.getLogger(__name__)

FLAVOR_LABEL = "yushan.io/flavor"


@dataclass(frozen=True, slots=True)
class LoopSettings:
    interval_seconds: float = 1.0
    grace_seconds: int = 30
    finished_pod_ttl_seconds: float = 86400.0


@dataclass(slots=True)
class IterationReport:
    """What one iteration did; returned for tests, logs and metrics."""

    admitted: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    dispatch_errors: dict[str, str] = field(default_factory=dict)
    preempted: list[str] = field(default_factory=list)
    finished: dict[str, str] = field(default_factory=dict)
    requeued: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    conflict: bool = False
    fenced: bool = False
    cluster_error: str | None = None
    after_commit: list[Callable[[], None]] = field(default_factory=list, repr=False)
    """Metrics and log lines of the iteration's decisions, emitted only once they are stored
    (a rolled-back iteration must not count a job twice)."""

    def log_job(self, level: int, tenant: str, job_id: str, message: str, *args: object) -> None:
        self.after_commit.append(partial(_log_job, level, tenant, job_id, message, *args))


class _LostLeadershipError(Exception):
    """The leader lease lapsed while a cycle ran: its writes must not be committed."""


def flavor_of(labels: Mapping[str, str], flavors: Sequence[Flavor]) -> str | None:
    """The flavor whose node labels the node carries (or whose name its flavor label names)."""
    for flavor in flavors:
        selector = flavor.node_labels
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            return flavor.name
    named = labels.get(FLAVOR_LABEL)
    return named if any(f.name == named for f in flavors) else None


class SchedulerLoop:
    def __init__(
        self,
        sessions: SessionFactory,
        cluster: ClusterClient,
        policy: Policy,
        *,
        settings: LoopSettings | None = None,
        clock: Callable[[], float] = time.time,
        is_leader: Callable[[], bool] = lambda: True,
    ) -> None:
        self.sessions = sessions
        self.cluster = cluster
        self.policy = policy
        self.settings = settings or LoopSettings()
        self.clock = clock
        self.is_leader = is_leader
        self._last_usage_update: float | None = None

    # -- the iteration --------------------------------------------------------------------

    def run_once(self) -> IterationReport:
        report = IterationReport()
        now = self.clock()
        try:
            nodes = self.cluster.list_nodes()
            observations = self.cluster.observe_jobs(expected=self._expected_workloads())
        except ClusterError as error:
            report.cluster_error = str(error)
            self._mark_cluster_unreachable(str(error))
            return report
        started = time.perf_counter()
        try:
            with transaction(self.sessions) as session:
                flavors = tenant_store.list_flavors(session)
                node_states = self._record_inventory(session, nodes, flavors, observations)
                self._apply_observations(session, observations, now, report)
                session.flush()
                # Holding the rows keeps them in the session, so the version each decision is
                # written against is the one the cycle saw.
                queued = job_store.queued_jobs(session)
                active = job_store.active_jobs(session)
                snapshot = build_snapshot(session, node_states, now, queued=queued, active=active)
                result = run_cycle(snapshot, self.policy)
                self._persist(session, snapshot, result, now, report)
                self._decay_usage(session, snapshot, now)
                if not self.is_leader():
                    raise _LostLeadershipError
        except _LostLeadershipError:
            report.fenced = True
            log.warning("leadership lost during the cycle; its decisions were rolled back")
            return report
        except (StaleDataError, InvalidTransition):
            report.conflict = True
            log.info("a job changed during the cycle; retrying with fresh state")
            return report
        for effect in report.after_commit:
            effect()
        metrics.METRICS.cycle_completed(time.perf_counter() - started)
        metrics.METRICS.publish_state(metrics.report_from_snapshot(snapshot))
        if self.is_leader():
            self._reconcile_cluster(observations, report)
        return report

    # -- 1-2: inventory -------------------------------------------------------------------

    def _record_inventory(
        self,
        session: Session,
        nodes: Sequence[NodeInfo],
        flavors: Sequence[Flavor],
        observations: Mapping[str, GangObservation],
    ) -> tuple[NodeState, ...]:
        lingering = self._lingering_usage(session, observations)
        active_usage = self._active_usage(session)
        records = []
        states = []
        for node in nodes:
            flavor = flavor_of(node.labels, flavors)
            extra = lingering.get(node.name, Demand(0, 0, 0))
            foreign = Demand(
                node.foreign.gpu + extra.gpu,
                node.foreign.cpu_milli + extra.cpu_milli,
                node.foreign.memory_bytes + extra.memory_bytes,
            )
            schedulable = node.ready and not node.unschedulable
            states.append(
                NodeState(
                    name=node.name,
                    flavor=flavor,
                    allocatable=Demand(
                        node.allocatable.gpu,
                        node.allocatable.cpu_milli,
                        node.allocatable.memory_bytes,
                    ),
                    labels=dict(node.labels),
                    schedulable=schedulable,
                    foreign=foreign,
                )
            )
            records.append(
                cluster_store.NodeRecord(
                    name=node.name,
                    flavor=flavor,
                    labels=dict(node.labels),
                    gpu_capacity=node.capacity.gpu,
                    gpu_allocatable=node.allocatable.gpu,
                    gpu_allocated=foreign.gpu + active_usage.get(node.name, 0),
                    cpu_milli_allocatable=node.allocatable.cpu_milli,
                    memory_bytes_allocatable=node.allocatable.memory_bytes,
                    ready=node.ready,
                    schedulable=schedulable,
                )
            )
        cluster_store.replace_nodes(session, records)
        return tuple(states)

    @staticmethod
    def _active_usage(session: Session) -> dict[str, int]:
        used: dict[str, int] = {}
        for job in job_store.active_jobs(session):
            for node in job.placement or ():
                used[node] = used.get(node, 0) + job.gpus
        return used

    @staticmethod
    def _lingering_usage(
        session: Session, observations: Mapping[str, GangObservation]
    ) -> dict[str, Demand]:
        """Resources held by pods of jobs that are no longer admitted or running."""
        held: dict[str, Demand] = {}
        for job in _jobs(session, observations):
            if JobStatus(job.status) in ACTIVE_STATES:
                continue
            for pod in observations[job.id].pods:
                if pod.node is None or pod.phase in ("Succeeded", "Failed"):
                    continue
                old = held.get(pod.node, Demand(0, 0, 0))
                held[pod.node] = Demand(
                    old.gpu + job.gpus,
                    old.cpu_milli + job.cpu_milli,
                    old.memory_bytes + job.memory_bytes,
                )
        return held

    # -- 3: observations ------------------------------------------------------------------

    def _apply_observations(
        self,
        session: Session,
        observations: Mapping[str, GangObservation],
        now: float,
        report: IterationReport,
    ) -> None:
        at = datetime.fromtimestamp(now, UTC)
        for job in job_store.active_jobs(session):
            observation = observations.get(job.id)
            if observation is None or observation.attempt != job.attempts:
                continue
            status = JobStatus(job.status)
            if observation.phase == "running" and status is JobStatus.ADMITTED:
                job_store.transition(
                    session, job, JobStatus.RUNNING, "Running", _running(job), at=at
                )
            elif observation.phase == "succeeded":
                self._finish(
                    session,
                    job,
                    JobStatus.SUCCEEDED,
                    "Succeeded",
                    "all workers succeeded",
                    at,
                    report,
                )
            elif observation.phase == "failed" and observation.retryable:
                self._requeue(
                    session, job, "NodeLost", observation.message or "node lost", at, report
                )
            elif observation.phase == "failed":
                job.exit_code = observation.exit_code
                reason = observation.reason or "Failed"
                self._finish(
                    session,
                    job,
                    JobStatus.FAILED,
                    reason,
                    observation.message or reason,
                    at,
                    report,
                )
            elif observation.phase == "missing" and status is JobStatus.RUNNING:
                self._requeue(session, job, "PodsLost", "the job's pods disappeared", at, report)

    def _finish(
        self,
        session: Session,
        job: Job,
        status: JobStatus,
        reason: str,
        message: str,
        at: datetime,
        report: IterationReport,
    ) -> None:
        run_seconds = 0.0
        if job.started_at is not None:
            run_seconds = max(0.0, (at - as_utc(job.started_at)).total_seconds())
        job_store.transition(session, job, status, reason, message, at=at)
        report.finished[job.id] = status.value
        report.log_job(
            logging.INFO, job.tenant, job.id, "%s (%s): %s", status.value, reason, message
        )
        report.after_commit.append(
            partial(metrics.METRICS.job_finished, job.tenant, job.flavor, status.value, run_seconds)
        )

    def _requeue(
        self,
        session: Session,
        job: Job,
        reason: str,
        message: str,
        at: datetime,
        report: IterationReport,
    ) -> None:
        """Evict a job: through ``preempted`` back to ``queued`` with backoff, or ``failed``."""
        job_store.transition(session, job, JobStatus.PREEMPTED, reason, message, at=at)
        report.log_job(logging.INFO, job.tenant, job.id, "evicted (%s): %s", reason, message)
        delay = requeue_delay(job.attempts + 1, self.policy)
        if delay is None:
            self._finish(
                session,
                job,
                JobStatus.FAILED,
                "RetryLimitExceeded",
                f"{message}; evicted {job.attempts + 1} times, retry limit reached",
                at,
                report,
            )
            return
        job.attempts += 1
        job.not_before = at + timedelta(seconds=delay)
        job.placement = None
        job_store.transition(
            session,
            job,
            JobStatus.QUEUED,
            "Backoff",
            f"{message}; requeued, eligible again in {int(delay)} s",
            at=at,
        )
        report.requeued.append(job.id)

    # -- 5: decisions ---------------------------------------------------------------------

    def _persist(
        self,
        session: Session,
        snapshot: Snapshot,
        result: CycleResult,
        now: float,
        report: IterationReport,
    ) -> None:
        at = datetime.fromtimestamp(now, UTC)
        by_id = {job.id: job for job in _jobs(session, _decided_ids(result))}
        for admit in result.admitted:
            job = by_id[admit.job_id]
            job.placement = list(admit.placement)
            message = f"placed on {', '.join(sorted(set(admit.placement)))}"
            if admit.borrowing:
                message += " (borrowing idle quota)"
            job_store.transition(session, job, JobStatus.ADMITTED, "Admitted", message, at=at)
            report.log_job(logging.INFO, job.tenant, job.id, "admitted: %s", message)
            wait = now - as_utc(job.created_at).timestamp()
            report.after_commit.append(
                partial(metrics.METRICS.job_admitted, job.tenant, job.flavor, max(0.0, wait))
            )
            report.admitted.append(job.id)
        for preempt in result.preempted:
            job = by_id[preempt.job_id]
            report.after_commit.append(
                partial(metrics.METRICS.job_preempted, job.tenant, job.flavor, preempt.reason)
            )
            self._requeue(session, job, str(preempt.reason), preempt.message, at, report)
            report.preempted.append(job.id)
        for failure in result.failed:
            job = by_id[failure.job_id]
            if JobStatus(job.status) in FINAL_STATES:
                continue
            self._finish(
                session, job, JobStatus.FAILED, failure.reason, failure.message, at, report
            )
        self._update_pending(session, result)

    @staticmethod
    def _update_pending(session: Session, result: CycleResult) -> None:
        pending = {p.job_id: p for p in result.pending}
        for job in job_store.queued_jobs(session):
            entry = pending.get(job.id)
            if entry is None:
                continue
            if (job.queue_position, job.reason, job.message) != (
                entry.position,
                entry.reason,
                entry.message,
            ):
                job.queue_position = entry.position
                job.reason = entry.reason
                job.message = entry.message

    # -- 6: the cluster -------------------------------------------------------------------

    def _reconcile_cluster(
        self, observations: Mapping[str, GangObservation], report: IterationReport
    ) -> None:
        """Create missing pods of admitted jobs; delete pods of jobs that should not run."""
        with self.sessions() as session:
            stale = [
                job
                for job in _jobs(session, observations)
                if JobStatus(job.status) not in ACTIVE_STATES
            ]
        to_dispatch = [
            spec
            for job_id, spec in self._expected_workloads().items()
            if job_id not in observations
            or observations[job_id].phase in ("missing", "partial")
            or observations[job_id].attempt != spec.attempt
        ]
        self._dispatch(to_dispatch, report)
        for job in stale:
            self._clean_up(job, observations[job.id], report)

    def _clean_up(self, job: Job, observation: GangObservation, report: IterationReport) -> None:
        """Delete the pods of a job that should not run (any more).

        Pods of a finished job stay for their logs (a failed job loses only the workers still
        running) until ``finished_pod_ttl_seconds`` after it finished.
        """
        live = [p for p in observation.pods if not p.terminating]
        if not live:
            return
        status = JobStatus(job.status)
        keep_finished = False
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            expired = job.finished_at is not None and (
                self.clock() - as_utc(job.finished_at).timestamp()
                > self.settings.finished_pod_ttl_seconds
            )
            still_running = any(p.phase not in ("Succeeded", "Failed") for p in live)
            if not expired and not still_running:
                return
            keep_finished = not expired
        grace = 0 if observation.retryable else self.settings.grace_seconds
        try:
            self.cluster.delete_job(
                job.id, observation.namespace, grace, keep_finished=keep_finished
            )
            report.deleted.append(job.id)
        except ClusterError as error:
            _log_job(logging.WARNING, job.tenant, job.id, "deleting pods failed: %s", error)

    def _dispatch(self, specs: Sequence[WorkloadSpec], report: IterationReport) -> None:
        if not specs:
            return
        started = time.perf_counter()
        errors = self.cluster.dispatch_many(specs)
        elapsed = time.perf_counter() - started
        for spec in specs:
            error = errors.get(spec.job_id)
            metrics.METRICS.dispatch_completed(elapsed, ok=error is None)
            if error is None:
                report.dispatched.append(spec.job_id)
            else:
                report.dispatch_errors[spec.job_id] = str(error)
                _log_job(
                    logging.WARNING,
                    spec.tenant,
                    spec.job_id,
                    "dispatch failed (will retry): %s",
                    error,
                )

    def _mark_cluster_unreachable(self, detail: str) -> None:
        message = f"waiting for the cluster, which is unreachable: {detail[:200]}"
        try:
            with transaction(self.sessions) as session:
                for job in job_store.queued_jobs(session):
                    if job.reason != "ClusterUnreachable":
                        job.reason = "ClusterUnreachable"
                        job.message = message
        except StaleDataError:
            pass

    # -- 7: usage -------------------------------------------------------------------------

    def _decay_usage(self, session: Session, snapshot: Snapshot, now: float) -> None:
        last = self._last_usage_update
        self._last_usage_update = now
        if last is None:
            return
        dt = now - last
        if dt <= 0:
            return
        held_by_tenant: dict[str, float] = {}
        held_by_user: dict[tuple[str, str], float] = {}
        for job in snapshot.running:
            gpus = float(job.total().gpu)
            held_by_tenant[job.tenant] = held_by_tenant.get(job.tenant, 0.0) + gpus
            key = (job.tenant, job.user)
            held_by_user[key] = held_by_user.get(key, 0.0) + gpus
        half_life = self.policy.half_life_seconds
        values: dict[tuple[str, str], float] = {}
        for tenant in set(snapshot.usage.tenants) | set(held_by_tenant):
            old = snapshot.usage.tenants.get(tenant, 0.0)
            values[(tenant, "")] = decay(old, held_by_tenant.get(tenant, 0.0), dt, half_life)
        for key in set(snapshot.usage.users) | set(held_by_user):
            old = snapshot.usage.users.get(key, 0.0)
            values[key] = decay(old, held_by_user.get(key, 0.0), dt, half_life)
        cluster_store.save_usage(session, values)

    # -- running --------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        """Iterate until ``stop`` is set; only the leader iterates."""
        while not stop.is_set():
            if self.is_leader():
                try:
                    self.run_once()
                except Exception:
                    log.exception("scheduler iteration failed; retrying")
            stop.wait(self.settings.interval_seconds)

    def _expected_workloads(self) -> dict[str, WorkloadSpec]:
        """The workloads of admitted and running jobs: what the cluster should be running."""
        with self.sessions() as session:
            active = [job for job in job_store.active_jobs(session) if job.placement]
            flavors = {f.name: f for f in tenant_store.list_flavors(session)}
            namespaces = {t.name: t.namespace for t in tenant_store.list_tenants(session)}
        return {job.id: _workload(job, flavors, namespaces) for job in active}

    def recover(self) -> None:
        """After a restart: adopt our pods, recreate missing ones, delete orphans."""
        report = self.cluster.reconcile(self._expected_workloads(), keep_finished=True)
        log.info(
            "recovered: adopted %d, created %d, deleted %d pods",
            len(report.adopted),
            len(report.created),
            len(report.deleted),
        )


def _workload(
    job: Job, flavors: Mapping[str, Flavor], namespaces: Mapping[str, str]
) -> WorkloadSpec:
    flavor = flavors.get(job.flavor)
    return WorkloadSpec(
        job_id=job.id,
        job_name=job.name,
        tenant=job.tenant,
        user=job.user,
        namespace=namespaces[job.tenant],
        image=job.image,
        workers=job.workers,
        gpus_per_worker=job.gpus,
        cpu_milli=job.cpu_milli,
        memory_bytes=job.memory_bytes,
        placement=tuple(job.placement or ()),
        command=tuple(job.command),
        args=tuple(job.args),
        env=dict(job.env),
        node_labels=dict(flavor.node_labels) if flavor else {},
        max_runtime_seconds=job.max_runtime_seconds,
        annotations=dict(job.annotations),
        attempt=job.attempts,
        checkpoint_interval_seconds=job.checkpoint_interval_seconds,
    )


def _log_job(level: int, tenant: str, job_id: str, message: str, *args: object) -> None:
    """A log line carrying the job's tenant and id as structured fields."""
    with log_context(tenant=tenant, job_id=job_id):
        log.log(level, message, *args)


def _decided_ids(result: CycleResult) -> list[str]:
    return (
        [a.job_id for a in result.admitted]
        + [p.job_id for p in result.preempted]
        + [f.job_id for f in result.failed]
    )


def _jobs(session: Session, ids: Iterable[str]) -> list[Job]:
    wanted = list(ids)
    if not wanted:
        return []
    return list(session.scalars(select(Job).where(Job.id.in_(wanted))).all())


def _running(job: Job) -> str:
    workers = "worker" if job.workers == 1 else f"all {job.workers} workers"
    return f"{workers} running"
