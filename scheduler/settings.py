"""Scheduler process settings, from ``YUSHAN_*`` environment variables (the Helm chart's
ConfigMap sets them; see ``charts/yushan/values.yaml``)."""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from scheduler.policy import DEFAULT_HALF_LIFE_SECONDS, Policy
from store.settings import DEFAULT_DATABASE_URL


def _default_identity() -> str:
    return os.environ.get("YUSHAN_POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUSHAN_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    policy: Literal["fifo", "fair", "fair+backfill"] = "fair+backfill"
    usage_half_life_seconds: float = Field(default=DEFAULT_HALF_LIFE_SECONDS, gt=0)
    min_runtime_seconds: int = Field(default=300, ge=0)
    retry_limit: int = Field(default=6, ge=0)
    cycle_interval_seconds: float = Field(default=15.0, gt=0)
    """The safety tick: the longest the loop sleeps when no event (job, pod, node) woke it."""
    wake_debounce_seconds: float = Field(default=0.005, ge=0, le=5)
    """After a wake-up, gather further events this long so that a burst makes one cycle."""
    resync_interval_seconds: float = Field(default=3600.0, ge=0)
    """Full relist of the cluster cache (pods, nodes) this often; 0 never (watch only)."""
    listen_for_job_changes: bool = True
    """On PostgreSQL, LISTEN for the API's NOTIFY to wake on submissions and cancels."""
    finished_pod_ttl_seconds: float = Field(default=86400.0, ge=0)
    create_tenant_namespaces: bool = True
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=9090, ge=0, le=65535)
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    leader_election: bool = True
    leader_election_lease_name: str = "yushan-scheduler"
    pod_namespace: str = "default"
    pod_name: str = Field(default_factory=_default_identity)
    leader_election_lease_duration_seconds: float = Field(default=15.0, gt=0)
    leader_election_renew_deadline_seconds: float = Field(default=10.0, gt=0)
    leader_election_retry_period_seconds: float = Field(default=2.0, gt=0)

    def scheduling_policy(self) -> Policy:
        return dataclasses.replace(
            Policy.named(self.policy),
            half_life_seconds=self.usage_half_life_seconds,
            min_runtime_seconds=self.min_runtime_seconds,
            retry_limit=self.retry_limit,
        )
