"""The scheduler loop: observe the cluster, run the pure cycle, persist decisions, dispatch.

One iteration (:meth:`SchedulerLoop.run_once`), in one database transaction, in order:

1. **Observe** the cluster through its view (:class:`k8s.watcher.ClusterWatcher` in production:
   an in-memory list+watch cache, so an iteration sends no LIST to the API server): nodes
   (capacity, readiness, usage of foreign pods) and every Yushan-managed gang of pods.
2. **Read the store once**: flavors, tenants, queued jobs, active (admitted or running) jobs,
   and the rows of jobs that still have pods.
3. **Apply observations** to admitted and running jobs: all workers running → ``running``; all
   succeeded → ``succeeded``; a worker failed → ``failed`` (the rest of the gang deleted); a
   node lost → requeued with backoff, or ``failed`` past the retry limit.
4. **Record the inventory** in the database (``/v1/cluster`` and submit-time fit checks read
   it), only when it changed.
5. **Snapshot** the rows already read and run the pure cycle (:func:`scheduler.cycle.run_cycle`).
6. **Persist decisions** *before* touching the cluster: admissions with their placement,
   preemptions (requeued with backoff), deadline failures, then queue positions and reasons.
   The database is the source of truth: if the process dies after this commit, the next
   iteration finds admitted jobs without pods and dispatches them again.
7. **Decay usage**: fold the GPUs each tenant and user holds into their decayed usage.
8. After the commit, **dispatch**: create the pods of every admitted job that lacks them
   (idempotent: pod names are deterministic), delete the pods of jobs that were cancelled,
   preempted or failed, and the pods of *orphans*: gangs of this installation whose job row no
   longer exists (a tenant deleted with ``force``). Pods of an orphan have no row to size them,
   so the nodes they occupy take no new job until they are gone.

**Conflicts cost one job, not the cycle.** Job writes are versioned (``UPDATE ... WHERE id = :id
AND version = :seen``). The writes of each phase (observations, decisions) are first tried
together inside one SAVEPOINT; if a job changed concurrently (a user cancelled it while the
cycle ran), that savepoint is rolled back and the phase is replayed job by job, each in its own
SAVEPOINT, skipping every job whose version moved since the snapshot (reported in
:attr:`IterationReport.skipped`). The other decisions commit. Queue positions and waiting
reasons are advisory and written without a version bump, only while the job is still queued,
so they never conflict with a cancel. On SQLite the iteration takes the write lock up front
(``BEGIN IMMEDIATE``), so writers of other threads wait for it rather than conflict.

**Wake-up.** :meth:`SchedulerLoop.run_forever` sleeps until :meth:`SchedulerLoop.notify` is
called — by a watch event (pods, nodes), by the API after a submission or cancel (in-process),
or by a PostgreSQL ``NOTIFY`` (:mod:`scheduler.wakeup`) — or until the safety tick
(``interval_seconds``) passes; events arriving during an iteration coalesce into one more.

Pods that linger after their job stopped (terminating, or not yet deleted) keep counting as
used capacity on their nodes, so GPUs are free only once the pods are really gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol, cast

from sqlalchemy import ColumnElement, Table, bindparam, select, update
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.exc import StaleDataError

from k8s.client import ClusterClient
from k8s.errors import ClusterError
from k8s.types import GangObservation, NodeInfo, WorkloadSpec
from quotas.decay import decay
from scheduler import metrics
from scheduler.backoff import requeue_delay
from scheduler.cycle import DEADLINE_EXCEEDED, run_cycle
from scheduler.estimate import (
    ESTIMATED_PER_TENANT,
    Estimate,
    annotate,
    applicable,
    heads,
    project,
)
from scheduler.logs import log_context
from scheduler.model import (
    Admit,
    CycleResult,
    Demand,
    NodeState,
    Preempt,
    PreemptionReason,
    Snapshot,
)
from scheduler.policy import Policy
from scheduler.snapshots import build_snapshot
from scheduler.state import SchedulingState
from store import cluster as cluster_store
from store import heartbeat as heartbeat_store
from store import installation as installation_store
from store import jobs as job_store
from store import ledger
from store import tenants as tenant_store
from store import wallets as wallet_store
from store.common import as_utc
from store.db import SessionFactory, transaction
from store.errors import InvalidTransition
from store.jobstates import ACTIVE_STATES, FINAL_STATES, JobStatus
from store.models import Flavor, Job

log = logging.getLogger(__name__)

FLAVOR_LABEL = cluster_store.FLAVOR_LABEL
_JOBS = cast(Table, Job.__table__)
CREDITS_EXHAUSTED = "CreditsExhausted"


@dataclass(frozen=True, slots=True)
class LoopSettings:
    interval_seconds: float = 15.0
    """The safety tick: the longest :meth:`SchedulerLoop.run_forever` sleeps without an event."""
    debounce_seconds: float = 0.005
    """After a wake-up, wait this long so that a burst of events makes one iteration."""
    grace_seconds: int = 30
    finished_pod_ttl_seconds: float = 86400.0
    expectation_seconds: float = 30.0
    """How long pods just created (or deleted) may take to show in the cluster view before the
    loop creates (or deletes) them again."""
    identity: str = "scheduler"
    """Who this scheduler is (its pod name), written with every cycle's heartbeat."""
    create_namespaces: bool = True
    """Whether its cluster client creates tenant namespaces (reported with the heartbeat)."""
    estimated_per_tenant: int = ESTIMATED_PER_TENANT
    """Queued jobs of each tenant whose estimated start is projected (0: none)."""
    estimate_interval_seconds: float = 0.0
    """Project estimated starts at most this often (0: after every cycle); every cycle writes
    the latest ones. The projection runs after the commit and the dispatch, outside the
    iteration's transaction, and never takes more than :data:`ESTIMATE_TIME_SHARE` of the loop's
    time: a projection that took 1 s waits at least 10 s for the next."""
    accrual_interval_seconds: float = 60.0
    """Accrue running jobs into the usage ledger once this much run time is unaccrued (ending
    attempts are closed in the iteration that sees them end); see :mod:`store.ledger`."""


ESTIMATE_TIME_SHARE = 0.1
"""The largest share of the loop's time that start-time projections may take."""


class ClusterView(Protocol):
    """Where the loop reads the cluster: a :class:`k8s.watcher.ClusterWatcher` in production
    (no request per iteration), or a :class:`k8s.client.ClusterClient` (two LISTs). A view
    with a ``last_error`` attribute that is set counts as an unreachable cluster."""

    def snapshot(self) -> tuple[list[NodeInfo], dict[str, GangObservation]]: ...


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
    skipped: list[str] = field(default_factory=list)
    """Jobs that changed concurrently (e.g. cancelled) during the iteration: their decision
    was dropped, the rest of the iteration committed."""
    conflict: bool = False
    """The whole iteration was rolled back (a conflict outside any single job's writes)."""
    fenced: bool = False
    cluster_error: str | None = None
    after_commit: list[Callable[[], None]] = field(default_factory=list, repr=False)
    """Metrics and log lines of the iteration's decisions, emitted only once they are stored
    (a rolled-back iteration must not count a job twice)."""

    def log_job(self, level: int, tenant: str, job_id: str, message: str, *args: object) -> None:
        self.after_commit.append(partial(_log_job, level, tenant, job_id, message, *args))

    def merge(self, other: IterationReport) -> None:
        """Take over the decisions of ``other`` (the report of one savepoint that committed)."""
        self.admitted += other.admitted
        self.preempted += other.preempted
        self.finished.update(other.finished)
        self.requeued += other.requeued
        self.after_commit += other.after_commit


class InstallationMismatch(Exception):
    """The cluster runs another installation's pods and this database holds no job: most
    likely the scheduler was pointed at the wrong (or a fresh) database. It refuses to start."""


class _LostLeadershipError(Exception):
    """The leader lease lapsed while a cycle ran: its writes must not be committed."""


class _ChangedConcurrentlyError(Exception):
    """The job's row is no longer the version the cycle saw."""


_JobWrite = Callable[[IterationReport], None]


@dataclass(frozen=True, slots=True)
class _Stale:
    """A job that has pods but should not run (any more): what clean-up needs of its row."""

    job_id: str
    tenant: str
    status: JobStatus
    finished_at: float | None


@dataclass(slots=True)
class _Plan:
    """What the committed iteration asks of the cluster."""

    snapshot: Snapshot
    lacking_pods: dict[str, WorkloadSpec]
    """Admitted or running jobs whose pods the cluster view does not show (all of them)."""
    stale: list[_Stale]
    inventory: list[cluster_store.NodeRecord]
    started: frozenset[str] = frozenset()
    """Jobs of the snapshot whose pods run (status ``running``), as opposed to admitted."""
    orphans: Mapping[str, GangObservation] = field(default_factory=dict)
    """Gangs whose job row no longer exists (their tenant was deleted): their pods go."""


def flavor_of(labels: Mapping[str, str], flavors: Sequence[Flavor]) -> str | None:
    """The flavor whose node labels the node carries (or whose name its flavor label names)."""
    for flavor in flavors:
        selector = flavor.node_labels
        if selector and cluster_store.selects(flavor.name, selector, labels):
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
        view: ClusterView | None = None,
    ) -> None:
        self.sessions = sessions
        self.cluster = cluster
        self.view: ClusterView = view if view is not None else cluster
        self.policy = policy
        self.settings = settings or LoopSettings()
        self.clock = clock
        self.is_leader = is_leader
        self.wake = threading.Event()
        """Set by :meth:`notify`; :meth:`run_forever` iterates once per wake-up."""
        self.iterations = 0
        self._last_usage_update: float | None = None
        self._last_full_accrual: float | None = None
        """When the last committed iteration accrued every running attempt."""
        self._inventory: list[cluster_store.NodeRecord] | None = None
        self._creating: dict[str, tuple[WorkloadSpec, float]] = {}
        """Jobs whose pods this loop created and the cluster view does not show yet."""
        self._deleting: dict[str, float] = {}
        self._estimates: dict[str, Estimate] = {}
        self._estimated_at: float | None = None
        self._estimate_cost = 0.0
        self._last_cycle: tuple[Snapshot, CycleResult] | None = None

    def notify(self) -> None:
        """Something changed (a job, a pod, a node): iterate soon. Cheap; call from any thread."""
        self.wake.set()

    # -- the iteration --------------------------------------------------------------------

    def run_once(self) -> IterationReport:
        report = IterationReport()
        self.iterations += 1
        now = self.clock()
        try:
            failing: ClusterError | None = getattr(self.view, "last_error", None)
            if failing is not None:  # the watch cache cannot reach the cluster right now
                raise failing
            nodes, gangs = self.view.snapshot()
        except ClusterError as error:
            report.cluster_error = str(error)
            metrics.METRICS.cycle_completed(0.0, ok=False)
            self._mark_cluster_unreachable(str(error))
            return report
        started = time.perf_counter()
        try:
            with transaction(self.sessions) as session:
                _lock_sqlite(session)
                plan = self._iterate(session, nodes, gangs, now, report)
                heartbeat_store.beat(
                    session,
                    self.settings.identity,
                    datetime.fromtimestamp(now, UTC),
                    interval_seconds=self.settings.interval_seconds,
                    create_namespaces=self.settings.create_namespaces,
                )
                if not self.is_leader():
                    raise _LostLeadershipError
        except _LostLeadershipError:
            report.fenced = True
            log.warning("leadership lost during the cycle; its decisions were rolled back")
            return report
        except (StaleDataError, InvalidTransition):
            report.conflict = True
            log.info("a job changed during the cycle outside its own writes; retrying")
            metrics.METRICS.cycle_completed(time.perf_counter() - started, ok=False)
            return report
        except Exception:
            metrics.METRICS.cycle_completed(time.perf_counter() - started, ok=False)
            raise
        # Committed: only now may the clock of usage accrual and the inventory cache move on
        # (a rolled-back iteration must neither lose an interval nor skip a write).
        self._last_usage_update = now
        self._inventory = plan.inventory
        for effect in report.after_commit:
            effect()
        if report.skipped:
            log.info(
                "%d job(s) changed during the cycle; their decisions were dropped: %s",
                len(report.skipped),
                ", ".join(report.skipped[:10]),
            )
            self.notify()  # decide again on their new state
        metrics.METRICS.cycle_completed(time.perf_counter() - started)
        metrics.METRICS.publish_state(self._state_report(plan))
        if self.is_leader():
            self._reconcile_cluster(plan, gangs, report)
        self._refresh_estimates(now)
        return report

    def _state_report(self, plan: _Plan) -> metrics.StateReport:
        """The state gauges of this cycle: admitted vs running from the jobs' statuses, the
        cycle's entitlement (weighted fair share) and decayed usage in GPU-seconds."""
        snapshot = plan.snapshot
        state = SchedulingState(
            snapshot.tenants, snapshot.cohorts, (), (), self.policy.topology_label
        )
        return metrics.report_from_snapshot(
            snapshot,
            started=lambda job: job.id in plan.started,
            weighted_fair_shares=state.entitlement(),
            usage_half_life_seconds=self.policy.half_life_seconds,
        )

    def _iterate(
        self,
        session: Session,
        nodes: Sequence[NodeInfo],
        gangs: Mapping[str, GangObservation],
        now: float,
        report: IterationReport,
    ) -> _Plan:
        flavors = tenant_store.list_flavors(session)
        namespaces = {t.name: t.namespace for t in tenant_store.list_tenants(session)}
        queued = _rows(session, Job.status == JobStatus.QUEUED.value)
        active = _rows(session, Job.status.in_([s.value for s in ACTIVE_STATES]))
        known = {job.id for job in queued} | {job.id for job in active}
        wanted = [job_id for job_id in gangs if job_id not in known]
        others = _rows(session, Job.id.in_(wanted)) if wanted else []
        orphans = _orphans(gangs, wanted, others)
        observations = dict(gangs)
        for job in active:
            if job.id not in observations and job.placement:
                namespace = namespaces.get(job.tenant, "")
                observations[job.id] = GangObservation(
                    job.id, namespace, job.attempts, job.workers, "missing"
                )

        attempts = [(job, job.attempts, job.status == JobStatus.RUNNING.value) for job in active]
        self._apply_observations(session, active, observations, now, report)
        # Every row read, whatever its status now: a job that left the active states during
        # this iteration (finished, requeued, or found cancelled by a concurrent writer) may
        # still have pods holding their nodes.
        loaded = {job.id: job for job in (*active, *queued, *others)}
        requeued = [job for job in active if job.status == JobStatus.QUEUED.value]
        active = [job for job in active if JobStatus(job.status) in ACTIVE_STATES]
        queued = sorted(queued + requeued, key=lambda job: job.seq)
        with_pods = [job for job in loaded.values() if job.id in gangs]

        node_states, inventory = self._node_states(
            nodes, flavors, with_pods, gangs, active, _nodes_held_by(orphans)
        )
        if inventory != self._inventory:
            cluster_store.replace_nodes(session, inventory)
        snapshot = build_snapshot(session, node_states, now, queued=queued, active=active)
        result = run_cycle(snapshot, self.policy)
        self._last_cycle = (snapshot, result)
        self._persist(session, queued, active, snapshot, result, now, report, self._estimates)
        self._stop_unpaid(session, [job for job, _attempt, _running in attempts], now, report)
        self._accrue(session, attempts, observations, now, report)
        self._decay_usage(session, snapshot, now)

        by_name = {f.name: f for f in flavors}
        lacking = [
            job
            for job in (*active, *queued)
            if JobStatus(job.status) in ACTIVE_STATES
            and job.placement
            and not _shows_pods(gangs.get(job.id), job.attempts)
        ]
        details = _pod_details(session, [job.id for job in lacking])
        lacking_pods = {
            job.id: _workload(job, by_name, namespaces, details.get(job.id)) for job in lacking
        }
        stale = [
            _Stale(
                job.id,
                job.tenant,
                JobStatus(job.status),
                None if job.finished_at is None else as_utc(job.finished_at).timestamp(),
            )
            for job in with_pods
            if job.id in gangs and JobStatus(job.status) not in ACTIVE_STATES
        ]
        started = frozenset(job.id for job in active if job.status == JobStatus.RUNNING.value)
        return _Plan(snapshot, lacking_pods, stale, inventory, started, orphans)

    # -- per-job writes -------------------------------------------------------------------

    def _write_jobs(
        self,
        session: Session,
        writes: Sequence[tuple[Job, int, _JobWrite]],
        report: IterationReport,
        *,
        skip: Callable[[Job], bool] = lambda _job: False,
    ) -> None:
        """Apply per-job writes; a job changed concurrently loses only its own write.

        ``writes`` are (row, version the cycle saw, write). All are tried in one SAVEPOINT
        first; if any job changed, that savepoint rolls back (expiring the rows it touched)
        and the writes are replayed one SAVEPOINT per job, skipping every job whose row moved
        on. ``skip`` lets a write be dropped because of an earlier skipped one.
        """
        if not writes:
            return
        batch = IterationReport()
        try:
            with session.begin_nested():
                for _job, _seen, write in writes:
                    write(batch)
        except (StaleDataError, InvalidTransition):
            pass
        else:
            report.merge(batch)
            return
        for job, seen, write in writes:
            single = IterationReport()
            try:
                with session.begin_nested():
                    if job.version != seen or skip(job):
                        raise _ChangedConcurrentlyError
                    write(single)
            except (StaleDataError, InvalidTransition, _ChangedConcurrentlyError):
                report.skipped.append(job.id)
            else:
                report.merge(single)

    # -- 3: observations ------------------------------------------------------------------

    def _apply_observations(
        self,
        session: Session,
        active: Sequence[Job],
        observations: Mapping[str, GangObservation],
        now: float,
        report: IterationReport,
    ) -> None:
        at = datetime.fromtimestamp(now, UTC)
        writes: list[tuple[Job, int, _JobWrite]] = []
        for job in active:
            observation = observations.get(job.id)
            if observation is None or observation.attempt != job.attempts:
                continue
            write = self._observation_write(session, job, observation, at)
            if write is not None:
                writes.append((job, job.version, write))
        self._write_jobs(session, writes, report)

    def _observation_write(
        self, session: Session, job: Job, observation: GangObservation, at: datetime
    ) -> _JobWrite | None:
        status = JobStatus(job.status)
        if observation.phase == "running" and status is JobStatus.ADMITTED:

            def running(_report: IterationReport) -> None:
                job_store.transition(
                    session, job, JobStatus.RUNNING, "Running", _running(job), at=at
                )

            return running
        if observation.phase == "succeeded":
            return partial(
                self._finish,
                session,
                job,
                JobStatus.SUCCEEDED,
                "Succeeded",
                "all workers succeeded",
                at,
            )
        if observation.phase == "failed" and observation.retryable:
            message = observation.message or "node lost"
            return partial(self._requeue, session, job, "NodeLost", message, at)
        if observation.phase == "failed":

            def failed(report: IterationReport) -> None:
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

            return failed
        if observation.phase == "missing" and status is JobStatus.RUNNING:
            message = "the job's pods disappeared"
            return partial(self._requeue, session, job, "PodsLost", message, at)
        return None

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
        outcome = metrics.JobOutcome.TIMED_OUT if reason == DEADLINE_EXCEEDED else status.value
        run_seconds = 0.0
        if job.started_at is not None:
            run_seconds = max(0.0, (at - as_utc(job.started_at)).total_seconds())
        job_store.transition(session, job, status, reason, message, at=at)
        session.flush()
        report.finished[job.id] = status.value
        report.log_job(
            logging.INFO, job.tenant, job.id, "%s (%s): %s", status.value, reason, message
        )
        report.after_commit.append(
            partial(metrics.METRICS.job_finished, job.tenant, job.flavor, outcome, run_seconds)
        )

    def _requeue(
        self,
        session: Session,
        job: Job,
        reason: str,
        message: str,
        at: datetime,
        report: IterationReport,
        *,
        backoff: bool = True,
    ) -> None:
        """Evict a job: through ``preempted`` back to ``queued`` with backoff, or ``failed``.
        Without ``backoff`` (a drained job) it is requeued at once and never fails for it."""
        job_store.transition(session, job, JobStatus.PREEMPTED, reason, message, at=at)
        report.log_job(logging.INFO, job.tenant, job.id, "evicted (%s): %s", reason, message)
        delay = requeue_delay(job.attempts + 1, self.policy) if backoff else 0.0
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
        job.not_before = at + timedelta(seconds=delay) if backoff else None
        job.placement = None
        job_store.transition(
            session,
            job,
            JobStatus.QUEUED,
            "Backoff" if backoff else reason,
            f"{message}; requeued, eligible again in {int(delay)} s"
            if backoff
            else f"{message}; requeued",
            at=at,
        )
        session.flush()
        report.requeued.append(job.id)

    # -- 4: inventory ---------------------------------------------------------------------

    def _node_states(
        self,
        nodes: Sequence[NodeInfo],
        flavors: Sequence[Flavor],
        with_pods: Sequence[Job],
        gangs: Mapping[str, GangObservation],
        active: Sequence[Job],
        closed: frozenset[str] = frozenset(),
    ) -> tuple[tuple[NodeState, ...], list[cluster_store.NodeRecord]]:
        """The cycle's nodes and the inventory to record. ``closed`` nodes (holding pods of
        unknown size: orphans being deleted) take no new job until those pods are gone."""
        lingering = _lingering_usage(with_pods, gangs)
        active_ids = {job.id for job in active}
        for name, demand in self._unseen_usage(gangs, active_ids).items():
            old = lingering.get(name, Demand(0, 0, 0))
            lingering[name] = Demand(
                old.gpu + demand.gpu,
                old.cpu_milli + demand.cpu_milli,
                old.memory_bytes + demand.memory_bytes,
            )
        active_usage: dict[str, int] = {}
        for job in active:
            for node in job.placement or ():
                active_usage[node] = active_usage.get(node, 0) + job.gpus
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
                    schedulable=schedulable and node.name not in closed,
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
        return tuple(states), records

    def _unseen_usage(
        self, gangs: Mapping[str, GangObservation], active_ids: set[str]
    ) -> dict[str, Demand]:
        """Resources of pods created by an earlier iteration that the cluster view does not
        show yet, of jobs that no longer run (cancelled meanwhile): they exist, so they hold
        their nodes until they are seen and deleted. Active jobs count through placement."""
        held: dict[str, Demand] = {}
        for job_id, (spec, _until) in self._creating.items():
            if job_id in active_ids:
                continue
            observation = gangs.get(job_id)
            seen = set()
            if observation is not None and observation.attempt == spec.attempt:
                seen = {w.worker for w in observation.pods}
            for worker, node in enumerate(spec.placement):
                if worker in seen:
                    continue
                old = held.get(node, Demand(0, 0, 0))
                held[node] = Demand(
                    old.gpu + spec.gpus_per_worker,
                    old.cpu_milli + spec.cpu_milli,
                    old.memory_bytes + spec.memory_bytes,
                )
        return held

    # -- 6: decisions ---------------------------------------------------------------------

    def _persist(
        self,
        session: Session,
        queued: Sequence[Job],
        active: Sequence[Job],
        snapshot: Snapshot,
        result: CycleResult,
        now: float,
        report: IterationReport,
        estimates: Mapping[str, Estimate] | None = None,
    ) -> None:
        at = datetime.fromtimestamp(now, UTC)
        rows = {job.id: job for job in (*queued, *active)}
        # The versions the snapshot was built from: a decision is written only against them.
        seen = {job_id: job.version for job_id, job in rows.items()}
        writes: list[tuple[Job, int, _JobWrite]] = []
        for preempt in result.preempted:
            job = rows[preempt.job_id]
            writes.append((job, seen[job.id], partial(self._preempt, session, job, preempt, at)))
        for admit in result.admitted:
            job = rows[admit.job_id]
            writes.append((job, seen[job.id], partial(self._admit, session, job, admit, now)))
        for failure in result.failed:
            job = rows[failure.job_id]
            if JobStatus(job.status) in FINAL_STATES:
                continue
            write = partial(
                self._finish, session, job, JobStatus.FAILED, failure.reason, failure.message, at
            )
            writes.append((job, seen[job.id], write))
        admitted = {a.job_id: set(a.placement) for a in result.admitted}
        preempted = {p.job_id: set(rows[p.job_id].placement or ()) for p in result.preempted}
        skipped = report.skipped

        def relies_on_a_skipped_preemption(job: Job) -> bool:
            """An admission placed on capacity a preemption that did not happen would free."""
            wanted = admitted.get(job.id)
            return wanted is not None and any(wanted & preempted.get(o, set()) for o in skipped)

        self._write_jobs(session, writes, report, skip=relies_on_a_skipped_preemption)
        self._update_pending(session, queued, result, set(report.skipped), estimates or {})

    def _refresh_estimates(self, now: float) -> None:
        """Project the starts of the first jobs of every tenant from the last cycle
        (:mod:`scheduler.estimate`) after every cycle, or less often when the projection is
        slow or ``estimate_interval_seconds`` says so; the next iteration writes them."""
        per_tenant = self.settings.estimated_per_tenant
        last, self._last_cycle = self._last_cycle, None
        if per_tenant <= 0 or last is None:
            return
        pause = max(
            self.settings.estimate_interval_seconds, self._estimate_cost / ESTIMATE_TIME_SHARE
        )
        if self._estimated_at is not None and now - self._estimated_at < pause:
            return
        snapshot, result = last
        targets = heads(result.pending, per_tenant)
        started = [admit.job_id for admit in result.admitted]  # they start first
        took = time.perf_counter()
        self._estimates = project(snapshot, self.policy, targets, window=[*started, *targets])
        self._estimate_cost = time.perf_counter() - took
        self._estimated_at = now

    def _admit(
        self, session: Session, job: Job, admit: Admit, now: float, report: IterationReport
    ) -> None:
        at = datetime.fromtimestamp(now, UTC)
        job.placement = list(admit.placement)
        message = f"placed on {', '.join(sorted(set(admit.placement)))}"
        if admit.borrowing:
            message += " (borrowing idle quota)"
        job_store.transition(session, job, JobStatus.ADMITTED, "Admitted", message, at=at)
        session.flush()
        report.log_job(logging.INFO, job.tenant, job.id, "admitted: %s", message)
        wait = now - as_utc(job.created_at).timestamp()
        report.after_commit.append(
            partial(metrics.METRICS.job_admitted, job.tenant, job.flavor, max(0.0, wait))
        )
        report.admitted.append(job.id)

    def _preempt(
        self, session: Session, job: Job, preempt: Preempt, at: datetime, report: IterationReport
    ) -> None:
        report.after_commit.append(
            partial(metrics.METRICS.job_preempted, job.tenant, job.flavor, preempt.reason)
        )
        drained = preempt.reason is PreemptionReason.DRAINED
        self._requeue(
            session, job, str(preempt.reason), preempt.message, at, report, backoff=not drained
        )
        report.preempted.append(job.id)

    @staticmethod
    def _update_pending(
        session: Session,
        queued: Sequence[Job],
        result: CycleResult,
        skipped: set[str],
        estimates: Mapping[str, Estimate],
    ) -> None:
        """Queue positions, reasons and estimated starts: advisory, so written without a version
        bump and only while the job is still queued (a concurrent cancel wins and never
        conflicts)."""
        estimates = applicable(result.pending, estimates)
        pending = {entry[0]: entry for entry in annotate(result.pending, estimates)}
        changes = []
        for job in queued:
            entry = pending.get(job.id)
            if entry is None or job.id in skipped:
                continue
            _, position, _, reason, message = entry
            estimate = estimates.get(job.id)
            start = None if estimate is None else datetime.fromtimestamp(estimate.start, UTC)
            bound = estimate is not None and estimate.bound
            if (job.queue_position, job.reason, job.message) != (position, reason, message) or (
                job.estimated_start is None
            ) != (start is None):
                changes.append(
                    {
                        "job": job.id,
                        "position": position,
                        "reason": reason,
                        "message": message,
                        "start": start,
                        "bound": bound,
                    }
                )
        if not changes:
            return
        statement = (
            update(_JOBS)
            .where(_JOBS.c.id == bindparam("job"), _JOBS.c.status == JobStatus.QUEUED.value)
            .values(
                queue_position=bindparam("position"),
                reason=bindparam("reason"),
                message=bindparam("message"),
                estimated_start=bindparam("start"),
                estimate_is_bound=bindparam("bound"),
            )
        )
        session.connection().execute(statement, changes)

    # -- 7: accounting and usage ---------------------------------------------------------

    def _stop_unpaid(
        self, session: Session, jobs: Sequence[Job], now: float, report: IterationReport
    ) -> None:
        """Stop the jobs of tenants whose credit ran out and whose policy says ``stop``
        (the default, ``finish``, lets them run to the end)."""
        if not jobs:
            return
        unpaid = wallet_store.exhausted(session, on_exhausted="stop")
        at = datetime.fromtimestamp(now, UTC)
        message = "stopped: the tenant's wallet ran out of credit (its policy is 'stop')"
        writes: list[tuple[Job, int, _JobWrite]] = [
            (
                job,
                job.version,
                partial(
                    self._finish, session, job, JobStatus.FAILED, CREDITS_EXHAUSTED, message, at
                ),
            )
            for job in jobs
            if job.tenant in unpaid and JobStatus(job.status) in ACTIVE_STATES
        ]
        self._write_jobs(session, writes, report)

    def _accrue(
        self,
        session: Session,
        attempts: Sequence[tuple[Job, int, bool]],
        observations: Mapping[str, GangObservation],
        now: float,
        report: IterationReport,
    ) -> None:
        """Write run time to the usage ledger and charge wallets, in this transaction: every
        running attempt once per accrual interval (a full pass), and in between only the
        attempts that started or ended."""
        accounted = []
        for job, attempt, was_running in attempts:
            seen = observations.get(job.id)
            pods = seen if seen is not None and seen.attempt == attempt else None
            still_running = job.status == JobStatus.RUNNING.value and job.attempts == attempt
            accounted.append(
                ledger.Attempt(
                    job,
                    attempt,
                    pods.started_at if pods else None,
                    pods.finished_at if pods else None,
                    changed=not (was_running and still_running),
                )
            )
        interval = self.settings.accrual_interval_seconds
        last = self._last_full_accrual
        full = last is None or now - last >= interval
        accrued = ledger.accrue(session, accounted, now, min_interval_seconds=interval, full=full)
        if full:
            report.after_commit.append(partial(setattr, self, "_last_full_accrual", now))
        report.after_commit.append(
            partial(metrics.METRICS.accrued, accrued.spend, accrued.credited, accrued.balances)
        )

    # -- 7: usage -------------------------------------------------------------------------

    def _decay_usage(self, session: Session, snapshot: Snapshot, now: float) -> None:
        """Accrue usage since the last *committed* iteration (advanced only after commit)."""
        last = self._last_usage_update
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

    # -- 8: the cluster -------------------------------------------------------------------

    def _reconcile_cluster(
        self, plan: _Plan, gangs: Mapping[str, GangObservation], report: IterationReport
    ) -> None:
        """Create missing pods of admitted jobs; delete pods of jobs that should not run."""
        deadline = time.monotonic()
        self._creating = {
            job_id: (spec, until)
            for job_id, (spec, until) in self._creating.items()
            if until > deadline and not _shows_pods(gangs.get(job_id), spec.attempt)
        }
        to_dispatch = [
            spec
            for job_id, spec in plan.lacking_pods.items()
            if not (job_id in self._creating and self._creating[job_id][0].attempt == spec.attempt)
        ]
        self._dispatch(to_dispatch, report)
        stale_ids = {stale.job_id for stale in plan.stale} | set(plan.orphans)
        self._deleting = {
            job_id: until
            for job_id, until in self._deleting.items()
            if until > deadline and job_id in stale_ids
        }
        for stale in plan.stale:
            if stale.job_id not in self._deleting:
                self._clean_up(stale, gangs[stale.job_id], report)
        for job_id, observation in plan.orphans.items():
            if job_id not in self._deleting:
                self._delete_orphan(job_id, observation, report)

    def _delete_orphan(
        self, job_id: str, observation: GangObservation, report: IterationReport
    ) -> None:
        """Delete the pods of a job whose row is gone (its tenant was deleted)."""
        if all(p.terminating for p in observation.pods):
            return
        try:
            self.cluster.delete_job(
                job_id,
                observation.namespace,
                self.settings.grace_seconds,
                keep_finished=False,
                known_pods=observation.pods,
            )
            report.deleted.append(job_id)
            self._deleting[job_id] = time.monotonic() + self.settings.expectation_seconds
        except ClusterError as error:
            log.warning("deleting pods of orphaned job %s failed: %s", job_id, error)

    def _clean_up(self, job: _Stale, observation: GangObservation, report: IterationReport) -> None:
        """Delete the pods of a job that should not run (any more).

        Pods of a finished job stay for their logs (a failed job loses only the workers still
        running) until ``finished_pod_ttl_seconds`` after it finished.
        """
        live = [p for p in observation.pods if not p.terminating]
        if not live:
            return
        keep_finished = False
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            expired = job.finished_at is not None and (
                self.clock() - job.finished_at > self.settings.finished_pod_ttl_seconds
            )
            still_running = any(p.phase not in ("Succeeded", "Failed") for p in live)
            if not expired and not still_running:
                return
            keep_finished = not expired
        grace = 0 if observation.retryable else self.settings.grace_seconds
        try:
            self.cluster.delete_job(
                job.job_id,
                observation.namespace,
                grace,
                keep_finished=keep_finished,
                known_pods=observation.pods,
            )
            report.deleted.append(job.job_id)
            self._deleting[job.job_id] = time.monotonic() + self.settings.expectation_seconds
        except ClusterError as error:
            _log_job(logging.WARNING, job.tenant, job.job_id, "deleting pods failed: %s", error)

    def _dispatch(self, specs: Sequence[WorkloadSpec], report: IterationReport) -> None:
        if not specs:
            return
        started = time.perf_counter()
        errors = self.cluster.dispatch_many(specs)
        elapsed = time.perf_counter() - started
        until = time.monotonic() + self.settings.expectation_seconds
        for spec in specs:
            error = errors.get(spec.job_id)
            metrics.METRICS.dispatch_completed(elapsed, ok=error is None)
            if error is None:
                report.dispatched.append(spec.job_id)
                self._creating[spec.job_id] = (spec, until)
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
        """Tell waiting jobs why (advisory, no version bump: never conflicts with a cancel)."""
        message = f"waiting for the cluster, which is unreachable: {detail[:200]}"
        with transaction(self.sessions) as session:
            session.execute(
                update(_JOBS)
                .where(
                    _JOBS.c.status == JobStatus.QUEUED.value,
                    _JOBS.c.reason != "ClusterUnreachable",
                )
                .values(reason="ClusterUnreachable", message=message)
            )

    # -- running --------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        """Iterate on every wake-up (:meth:`notify`) and at least every ``interval_seconds``,
        until ``stop`` is set; only the leader iterates."""

        def wake_on_stop() -> None:
            stop.wait()
            self.wake.set()

        threading.Thread(target=wake_on_stop, name="scheduler-stop", daemon=True).start()
        self.wake.set()  # the first iteration at once
        while not stop.is_set():
            self.wake.wait(self.settings.interval_seconds)
            if stop.is_set():
                return
            if self.settings.debounce_seconds > 0:
                stop.wait(self.settings.debounce_seconds)
            self.wake.clear()
            if self.is_leader():
                try:
                    self.run_once()
                except Exception:
                    log.exception("scheduler iteration failed; retrying")
                    stop.wait(min(1.0, self.settings.interval_seconds))
                    self.wake.set()

    def _expected_workloads(self) -> dict[str, WorkloadSpec]:
        """The workloads of admitted and running jobs: what the cluster should be running."""
        with self.sessions() as session:
            active = [job for job in job_store.active_jobs(session) if job.placement]
            flavors = {f.name: f for f in tenant_store.list_flavors(session)}
            namespaces = {t.name: t.namespace for t in tenant_store.list_tenants(session)}
        return {job.id: _workload(job, flavors, namespaces) for job in active}

    def check_installation(self) -> None:
        """Refuse to run (:class:`InstallationMismatch`) when the cluster holds pods of another
        installation and this database is empty. Pods of another identity are never adopted
        or deleted in any case; with jobs of our own, they are only reported."""
        others = self.cluster.other_installations()
        if not others:
            return
        described = ", ".join(f"{key} ({count} pods)" for key, count in sorted(others.items()))
        with self.sessions() as session:
            empty = not installation_store.has_jobs(session)
        ours = self.cluster.options.installation
        if empty:
            raise InstallationMismatch(
                f"the cluster runs pods of another Yushan installation ({described}) and this "
                f"database (installation {ours}) holds no job: is YUSHAN_DATABASE_URL pointing "
                "at the right database? Refusing to start; see docs/operations.md, "
                '"Installation identity"'
            )
        log.warning(
            "the cluster also runs pods of other Yushan installations (%s); they are left alone",
            described,
        )

    def recover(self) -> None:
        """After a restart: adopt our pods, recreate missing ones, delete orphans (of this
        installation only; :meth:`check_installation` first)."""
        self.check_installation()
        report = self.cluster.reconcile(self._expected_workloads(), keep_finished=True)
        log.info(
            "recovered: adopted %d, created %d, deleted %d pods",
            len(report.adopted),
            len(report.created),
            len(report.deleted),
        )


def _shows_pods(observation: GangObservation | None, attempt: int) -> bool:
    """Whether the cluster view holds every pod of this attempt (dispatch not needed)."""
    return (
        observation is not None
        and observation.attempt == attempt
        and observation.phase not in ("missing", "partial")
    )


def _orphans(
    gangs: Mapping[str, GangObservation], unknown: Sequence[str], found: Sequence[Job]
) -> dict[str, GangObservation]:
    """Gangs of this installation whose job row does not exist (any more)."""
    rows = {job.id for job in found}
    return {job_id: gangs[job_id] for job_id in unknown if job_id not in rows}


def _nodes_held_by(orphans: Mapping[str, GangObservation]) -> frozenset[str]:
    """Nodes where orphaned pods still hold resources (their size is unknown without a row)."""
    return frozenset(
        pod.node
        for observation in orphans.values()
        for pod in observation.pods
        if pod.node is not None and pod.phase not in ("Succeeded", "Failed")
    )


def _lingering_usage(
    jobs: Iterable[Job], gangs: Mapping[str, GangObservation]
) -> dict[str, Demand]:
    """Resources held by pods of jobs that are no longer admitted or running."""
    held: dict[str, Demand] = {}
    for job in jobs:
        if JobStatus(job.status) in ACTIVE_STATES:
            continue
        for pod in gangs[job.id].pods:
            if pod.node is None or pod.phase in ("Succeeded", "Failed"):
                continue
            old = held.get(pod.node, Demand(0, 0, 0))
            held[pod.node] = Demand(
                old.gpu + job.gpus,
                old.cpu_milli + job.cpu_milli,
                old.memory_bytes + job.memory_bytes,
            )
    return held


def _lock_sqlite(session: Session) -> None:
    """On SQLite, take the write lock for the whole iteration (see the module docstring).

    pysqlite opens a transaction only before DML, so a SAVEPOINT issued first would start (and
    its RELEASE commit) a transaction of its own; ``BEGIN IMMEDIATE`` makes the iteration one
    real transaction, so its savepoints nest and its writes commit together.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


@dataclass(frozen=True, slots=True)
class _Details:
    command: list[str]
    args: list[str]
    env: dict[str, str]
    annotations: dict[str, str]


def _workload(
    job: Job,
    flavors: Mapping[str, Flavor],
    namespaces: Mapping[str, str],
    details: _Details | None = None,
) -> WorkloadSpec:
    if details is None:
        details = _Details(job.command, job.args, job.env, job.annotations)
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
        command=tuple(details.command),
        args=tuple(details.args),
        env=dict(details.env),
        node_labels=dict(flavor.node_labels) if flavor else {},
        max_runtime_seconds=job.max_runtime_seconds,
        annotations=dict(details.annotations),
        attempt=job.attempts,
        checkpoint_interval_seconds=job.checkpoint_interval_seconds,
    )


def _log_job(level: int, tenant: str, job_id: str, message: str, *args: object) -> None:
    """A log line carrying the job's tenant and id as structured fields."""
    with log_context(tenant=tenant, job_id=job_id):
        log.log(level, message, *args)


_POD_DETAILS = (Job.command, Job.args, Job.env, Job.annotations)
"""Columns only pod manifests need: not loaded with the iteration's rows (JSON decoding of
thousands of active jobs was a third of an iteration), fetched for the jobs to dispatch."""


def _rows(session: Session, *criteria: ColumnElement[bool]) -> list[Job]:
    statement = select(Job).where(*criteria).order_by(Job.seq)
    return list(session.scalars(statement.options(*(defer(c) for c in _POD_DETAILS))).all())


def _pod_details(session: Session, ids: Sequence[str]) -> dict[str, _Details]:
    if not ids:
        return {}
    rows = session.execute(select(Job.id, *_POD_DETAILS).where(Job.id.in_(ids)))
    return {row[0]: _Details(*row[1:]) for row in rows}


def _running(job: Job) -> str:
    workers = "worker" if job.workers == 1 else f"all {job.workers} workers"
    return f"{workers} running"
