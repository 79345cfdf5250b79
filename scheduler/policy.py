"""Scheduling policies: the knobs of the cycle, with the named presets the CLI offers.

``fifo`` is the baseline: one queue in submission order, quotas enforced (including borrowing),
no preemption and no reservations; a job that does not fit is skipped, not waited for. ``fair``
orders tenants by the dominant share of what they borrow and by their decayed usage relative to
their entitlement, orders jobs inside a tenant by priority and the user's decayed usage, and
preempts to restore nominal quotas and fair shares. ``fair+backfill`` adds EASY backfill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

PolicyKind = Literal["fifo", "fair"]
PreemptionMode = Literal["Never", "LowerPriority", "Any"]
PREEMPTION_MODES: tuple[str, ...] = ("Never", "LowerPriority", "Any")
POLICY_NAMES: tuple[str, ...] = ("fifo", "fair", "fair+backfill")
DEFAULT_HALF_LIFE_SECONDS = 7 * 86400.0
DEFAULT_TOPOLOGY_LABEL = "topology.yushan.io/block"
DEFAULT_STARVATION_SECONDS = 86400.0


@dataclass(frozen=True, slots=True)
class Policy:
    kind: PolicyKind
    backfill: bool
    half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS
    usage_sampling_seconds: float = 300.0
    min_runtime_seconds: int = 300
    backoff_base_seconds: float = 60.0
    backoff_max_seconds: float = 3600.0
    retry_limit: int = 6
    preemption: bool = True
    usage_weight: float = 1.0
    """How much the decayed-usage ratio counts against the borrowed share when ordering tenants."""
    max_preemption_attempts: int = 8
    """Preemption searches per cycle; bounds the cycle's cost when many jobs are blocked."""
    topology_label: str = DEFAULT_TOPOLOGY_LABEL
    starvation_seconds: float | None = DEFAULT_STARVATION_SECONDS
    """Jobs waiting longer than this are served first, oldest first, with a reservation that
    backfill respects (``None``: never)."""
    max_evictions_per_day: int = 3
    """A job evicted this many times in the last 24 hours is not evicted again that day."""
    within_tenant: PreemptionMode = "LowerPriority"
    """Kueue's ``withinClusterQueue``: which jobs of its own tenant a job may evict."""
    reclaim_within_cohort: PreemptionMode = "Any"
    """Kueue's ``reclaimWithinCohort``: which borrowers' jobs a tenant within its nominal quota
    may evict to get that quota back."""
    preemption_cost_factor: float = 1.0
    """Evict only when the work thrown away (GPU-seconds since the victims' last checkpoints) is
    at most this factor times what waiting would cost the preemptor (its GPUs x the time until
    capacity frees up by itself, projected from running jobs' time limits)."""

    def __post_init__(self) -> None:
        if self.kind not in ("fifo", "fair"):
            raise ValueError(f"unknown policy kind {self.kind!r}")
        _require_positive("half_life_seconds", self.half_life_seconds)
        _require_positive("usage_sampling_seconds", self.usage_sampling_seconds)
        _require_positive("backoff_base_seconds", self.backoff_base_seconds)
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_max_seconds must be at least backoff_base_seconds")
        if self.min_runtime_seconds < 0 or self.retry_limit < 0 or self.usage_weight < 0:
            raise ValueError("min_runtime_seconds, retry_limit and usage_weight must be >= 0")
        if self.starvation_seconds is not None and self.starvation_seconds <= 0:
            raise ValueError("starvation_seconds must be positive or None")
        if self.max_preemption_attempts < 0:
            raise ValueError("max_preemption_attempts must be >= 0")
        if self.max_evictions_per_day < 1:
            raise ValueError("max_evictions_per_day must be >= 1")
        for name in ("within_tenant", "reclaim_within_cohort"):
            if getattr(self, name) not in PREEMPTION_MODES:
                raise ValueError(f"{name} must be one of {', '.join(PREEMPTION_MODES)}")
        if not self.preemption_cost_factor >= 0:
            raise ValueError("preemption_cost_factor must be >= 0")

    @property
    def preempts(self) -> bool:
        return self.kind == "fair" and self.preemption

    @classmethod
    def named(cls, name: str) -> Policy:
        """The preset called ``fifo``, ``fair`` or ``fair+backfill``."""
        if name == "fifo":
            return cls(kind="fifo", backfill=False, preemption=False)
        if name == "fair":
            return cls(kind="fair", backfill=False)
        if name == "fair+backfill":
            return cls(kind="fair", backfill=True)
        raise ValueError(f"unknown policy {name!r}; expected one of {', '.join(POLICY_NAMES)}")


def _require_positive(name: str, value: float) -> None:
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
