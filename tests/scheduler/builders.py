"""Fluent builders for snapshots: tenants, cohorts, nodes and jobs in a few readable lines."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from scheduler.model import (
    GPU,
    NO_CONTROLS,
    CohortSpec,
    CycleResult,
    Demand,
    Dependency,
    JobState,
    NodeState,
    Priority,
    QueueControls,
    QuotaLimits,
    Snapshot,
    TenantSpec,
    UsageState,
)
from scheduler.placement import ClusterState

FLAVOR = "a100"
GIB = 1024**3


def demand(gpus: int) -> Demand:
    return Demand(gpus, 4000 * gpus, 16 * GIB * gpus)


class SnapshotBuilder:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now
        self._tenants: dict[str, TenantSpec] = {}
        self._cohorts: dict[str, CohortSpec] = {}
        self._nodes: list[NodeState] = []
        self._queued: list[JobState] = []
        self._running: list[JobState] = []
        self._tenant_usage: dict[str, float] = {}
        self._user_usage: dict[tuple[str, str], float] = {}
        self._preempting: set[str] = set()
        self._controls = NO_CONTROLS
        self._clock = 0.0

    def cohort(
        self,
        name: str,
        parent: str | None = None,
        gpu: int = 0,
        borrowing: int | None = None,
        lending: int | None = None,
        flavor: str = FLAVOR,
    ) -> SnapshotBuilder:
        quotas = {(flavor, GPU): QuotaLimits(gpu, borrowing, lending)}
        self._cohorts[name] = CohortSpec(name, parent, quotas)
        return self

    def tenant(
        self,
        name: str,
        cohort: str | None = "root",
        gpu: int = 8,
        borrowing: int | None = None,
        lending: int | None = None,
        weight: float = 1.0,
        flavor: str = FLAVOR,
    ) -> SnapshotBuilder:
        if cohort is not None and cohort not in self._cohorts:
            self.cohort(cohort)
        quotas = dict(self._tenants[name].quotas) if name in self._tenants else {}
        quotas[(flavor, GPU)] = QuotaLimits(gpu, borrowing, lending)
        self._tenants[name] = TenantSpec(name, cohort, weight, quotas)
        return self

    def nodes(
        self,
        count: int,
        gpus: int = 8,
        flavor: str = FLAVOR,
        block: str | None = None,
        schedulable: bool = True,
        foreign_gpus: int = 0,
    ) -> SnapshotBuilder:
        labels = {} if block is None else {"topology.yushan.io/block": block}
        for _ in range(count):
            name = f"{flavor}-{len(self._nodes)}"
            self._nodes.append(
                NodeState(
                    name,
                    flavor,
                    demand(gpus),
                    labels,
                    schedulable,
                    Demand(foreign_gpus, 0, 0),
                )
            )
        return self

    def job(
        self,
        job_id: str,
        tenant: str,
        gpus: int = 1,
        workers: int = 1,
        priority: Priority = Priority.NORMAL,
        user: str = "alice",
        submitted_at: float | None = None,
        max_runtime: int | None = None,
        not_before: float | None = None,
        flavor: str = FLAVOR,
        checkpoint: int | None = None,
        evicted_at: tuple[float, ...] = (),
        attempts: int = 0,
        held: bool = False,
        depends_on: tuple[Dependency, ...] = (),
        array: tuple[str, int] | None = None,
    ) -> JobState:
        if submitted_at is None:
            self._clock += 1.0
            submitted_at = self._clock
        return JobState(
            job_id,
            tenant,
            user,
            flavor,
            workers,
            demand(gpus),
            priority,
            submitted_at,
            max_runtime_seconds=max_runtime,
            not_before=not_before,
            checkpoint_interval_seconds=checkpoint,
            evicted_at=evicted_at,
            attempts=attempts,
            held=held,
            depends_on=depends_on,
            array_id=None if array is None else array[0],
            array_parallelism=None if array is None else array[1],
        )

    def queued(self, job_id: str, tenant: str, **kwargs: object) -> SnapshotBuilder:
        self._queued.append(self.job(job_id, tenant, **kwargs))  # type: ignore[arg-type]
        return self

    def running(
        self, job_id: str, tenant: str, started_ago: float = 3600.0, **kwargs: object
    ) -> SnapshotBuilder:
        job = self.job(job_id, tenant, **kwargs)  # type: ignore[arg-type]
        cluster = ClusterState(self._nodes, self._running, "topology.yushan.io/block")
        placement = cluster.place(job.flavor, job.workers, job.demand)
        assert placement is not None, f"running job {job_id} does not fit the nodes"
        self._running.append(replace(job, placement=placement, admitted_at=self.now - started_ago))
        return self

    def usage(self, tenant: str, value: float, user: str | None = None) -> SnapshotBuilder:
        if user is None:
            self._tenant_usage[tenant] = value
        else:
            self._user_usage[(tenant, user)] = value
        return self

    def preempting(self, job_id: str) -> SnapshotBuilder:
        self._preempting.add(job_id)
        return self

    def controls(self, controls: QueueControls) -> SnapshotBuilder:
        self._controls = controls
        return self

    def build(self) -> Snapshot:
        return Snapshot(
            now=self.now,
            nodes=tuple(self._nodes),
            tenants=dict(self._tenants),
            cohorts=dict(self._cohorts),
            queued=tuple(self._queued),
            running=tuple(self._running),
            usage=UsageState(dict(self._tenant_usage), dict(self._user_usage)),
            preempting=frozenset(self._preempting),
            controls=self._controls,
        )


class Waiting(NamedTuple):
    """A cycle's entry for a job that did not start (:data:`scheduler.model.Pending`, a plain
    tuple), with names for the assertions."""

    job_id: str
    position: int
    tenant_position: int
    reason: str
    message: str


def entries(result: CycleResult) -> list[Waiting]:
    return [Waiting(*entry) for entry in result.pending]


def waiting_entry(result: CycleResult, job_id: str) -> Waiting:
    return next(entry for entry in entries(result) if entry.job_id == job_id)
