"""Scheduler process settings, from ``YUSHAN_*`` environment variables (the Helm chart's
ConfigMap sets them; see ``charts/yushan/values.yaml``).

:meth:`SchedulerSettings.scheduling_policy` is the one place that turns them into the
:class:`~scheduler.policy.Policy` the loop runs with; ``yushan serve`` and ``yushan scheduler``
both call it (with their ``--policy`` flag as the only override), so no setting is dropped by
one entry point and honoured by the other.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scheduler.policy import POLICY_NAMES, Policy, PreemptionMode
from store.settings import DEFAULT_DATABASE_URL

_DEFAULTS = Policy(kind="fair", backfill=True)
"""The policy dataclass's own defaults, so that settings and policy cannot drift apart."""


def _default_identity() -> str:
    return os.environ.get("YUSHAN_POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUSHAN_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    policy: Literal["fifo", "fair", "fair+backfill"] = "fair+backfill"
    usage_half_life_seconds: float = Field(default=_DEFAULTS.half_life_seconds, gt=0)
    usage_weight: float = Field(default=_DEFAULTS.usage_weight, ge=0)
    min_runtime_seconds: int = Field(default=_DEFAULTS.min_runtime_seconds, ge=0)
    retry_limit: int = Field(default=_DEFAULTS.retry_limit, ge=0)
    backoff_base_seconds: float = Field(default=_DEFAULTS.backoff_base_seconds, gt=0)
    backoff_max_seconds: float = Field(default=_DEFAULTS.backoff_max_seconds, gt=0)
    starvation_seconds: float | None = Field(default=_DEFAULTS.starvation_seconds, gt=0)
    """``0`` or empty turns the starvation guard off."""
    max_evictions_per_day: int = Field(default=_DEFAULTS.max_evictions_per_day, ge=1)
    within_tenant: PreemptionMode = _DEFAULTS.within_tenant
    reclaim_within_cohort: PreemptionMode = _DEFAULTS.reclaim_within_cohort
    preemption_cost_factor: float = Field(default=_DEFAULTS.preemption_cost_factor, ge=0)
    cycle_interval_seconds: float = Field(default=15.0, gt=0)
    """The safety tick: the longest the loop sleeps when no event (job, pod, node) woke it."""
    wake_debounce_seconds: float = Field(default=0.005, ge=0, le=5)
    """After a wake-up, gather further events this long so that a burst makes one cycle."""
    resync_interval_seconds: float = Field(default=3600.0, ge=0)
    """Full relist of the cluster cache (pods, nodes) this often; 0 never (watch only)."""
    listen_for_job_changes: bool = True
    """On PostgreSQL, LISTEN for the API's NOTIFY to wake on submissions and cancels."""
    finished_pod_ttl_seconds: float = Field(default=86400.0, ge=0)
    estimated_jobs_per_tenant: int = Field(default=10, ge=0, le=1000)
    """Queued jobs of each tenant whose start is estimated (``squeue --start``); 0 turns it off."""
    estimate_interval_seconds: float = Field(default=0.0, ge=0)
    """Project the estimated starts at most this often (0: after every cycle; never more than a
    tenth of the loop's time either way)."""
    accrual_interval_seconds: float = Field(default=60.0, ge=0)
    """Write a running job's usage to the ledger (and charge its wallet) at least this often;
    an attempt that ends is always closed at once (see docs/accounting.md)."""
    create_tenant_namespaces: bool = True
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=9090, ge=0, le=65535)
    metrics_token: str | None = None
    """When set, ``/metrics`` answers only ``Authorization: Bearer <token>`` (401 otherwise):
    the series name tenants and flavors."""
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    leader_election: bool = True
    leader_election_lease_name: str = "yushan-scheduler"
    pod_namespace: str = "default"
    pod_name: str = Field(default_factory=_default_identity)
    leader_election_lease_duration_seconds: float = Field(default=15.0, gt=0)
    leader_election_renew_deadline_seconds: float = Field(default=10.0, gt=0)
    leader_election_retry_period_seconds: float = Field(default=2.0, gt=0)

    @field_validator("starvation_seconds", mode="before")
    @classmethod
    def _zero_or_empty_is_off(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            return None if float(value) == 0 else value
        except (TypeError, ValueError):
            return value  # let the field's own validation name the problem

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Cross-field rules (e.g. backoff max >= base) live in Policy; fail at start-up with a
        # settings error rather than in the first cycle.
        self.scheduling_policy()
        return self

    def scheduling_policy(self, policy: str | None = None) -> Policy:
        """The policy the loop runs with: the preset ``policy`` (default ``YUSHAN_POLICY``) with
        every tunable taken from these settings."""
        name = policy or self.policy
        if name not in POLICY_NAMES:
            raise ValueError(f"unknown policy {name!r}; expected one of {', '.join(POLICY_NAMES)}")
        return dataclasses.replace(
            Policy.named(name),
            half_life_seconds=self.usage_half_life_seconds,
            usage_weight=self.usage_weight,
            min_runtime_seconds=self.min_runtime_seconds,
            retry_limit=self.retry_limit,
            backoff_base_seconds=self.backoff_base_seconds,
            backoff_max_seconds=self.backoff_max_seconds,
            starvation_seconds=self.starvation_seconds,
            max_evictions_per_day=self.max_evictions_per_day,
            within_tenant=self.within_tenant,
            reclaim_within_cohort=self.reclaim_within_cohort,
            preemption_cost_factor=self.preemption_cost_factor,
        )
