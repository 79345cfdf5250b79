"""Fluent builders of scheduler snapshots for the observability tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Self

from scheduler.model import (
    Demand,
    JobState,
    NodeState,
    Priority,
    QuotaLimits,
    Snapshot,
    TenantSpec,
    UsageState,
)

GIB = 1 << 30


def demand(gpus: int) -> Demand:
    return Demand(gpu=gpus, cpu_milli=4000 * max(gpus, 1), memory_bytes=16 * GIB)


class SnapshotBuilder:
    """``SnapshotBuilder(now=1000).node("n1", "h100", gpus=8).tenant("a", h100=8).build()``"""

    def __init__(self, now: float = 10_000.0) -> None:
        self._now = now
        self._nodes: list[NodeState] = []
        self._tenants: dict[str, TenantSpec] = {}
        self._queued: list[JobState] = []
        self._running: list[JobState] = []
        self._usage: dict[str, float] = {}
        self._next_id = 0

    def node(
        self,
        name: str,
        flavor: str | None,
        *,
        gpus: int,
        schedulable: bool = True,
        foreign_gpus: int = 0,
    ) -> Self:
        self._nodes.append(
            NodeState(
                name=name,
                flavor=flavor,
                allocatable=demand(gpus),
                schedulable=schedulable,
                foreign=Demand(foreign_gpus, 0, 0),
            )
        )
        return self

    def tenant(
        self,
        name: str,
        *,
        weight: float = 1.0,
        borrowing_limit: int | None = None,
        lending_limit: int | None = None,
        usage: float = 0.0,
        **nominal_gpus: int,
    ) -> Self:
        quotas = {
            (flavor, "gpu"): QuotaLimits(nominal, borrowing_limit, lending_limit)
            for flavor, nominal in nominal_gpus.items()
        }
        self._tenants[name] = TenantSpec(name=name, cohort=None, weight=weight, quotas=quotas)
        self._usage[name] = usage
        return self

    def _job(self, tenant: str, flavor: str, gpus: int, workers: int, submitted: float) -> JobState:
        self._next_id += 1
        return JobState(
            id=f"job-{self._next_id}",
            tenant=tenant,
            user="alice",
            flavor=flavor,
            workers=workers,
            demand=demand(gpus),
            priority=Priority.NORMAL,
            submitted_at=submitted,
        )

    def queued(
        self, tenant: str, flavor: str, *, gpus: int = 1, workers: int = 1, waited: float = 0.0
    ) -> Self:
        self._queued.append(self._job(tenant, flavor, gpus, workers, self._now - waited))
        return self

    def running(self, tenant: str, flavor: str, *, gpus: int = 1, workers: int = 1) -> Self:
        job = self._job(tenant, flavor, gpus, workers, self._now - 3600)
        placement = tuple(f"node-{i}" for i in range(workers))
        self._running.append(replace(job, admitted_at=self._now - 60, placement=placement))
        return self

    def build(self) -> Snapshot:
        return Snapshot(
            now=self._now,
            nodes=tuple(self._nodes),
            tenants=dict(self._tenants),
            cohorts={},
            queued=tuple(self._queued),
            running=tuple(self._running),
            usage=UsageState(tenants=dict(self._usage)),
        )
