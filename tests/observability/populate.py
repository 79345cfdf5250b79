"""A metric set with every family populated, shared by the exposition and naming tests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from scheduler.metrics import (
    FlavorState,
    JobOutcome,
    StateReport,
    TenantFlavorState,
    TenantState,
    YushanMetrics,
)
from scheduler.model import PreemptionReason

NOW = 1_700_000_000.0

REPORT = StateReport(
    tenant_flavors=(
        TenantFlavorState(
            tenant="a",
            flavor="h100",
            pending_jobs=3,
            admitted_jobs=1,
            running_jobs=2,
            gpus_in_use=12,
            gpus_borrowed=4,
            nominal_gpus=8,
            borrowing_limit_gpus=8,
            lending_limit_gpus=2,
            oldest_pending_wait_seconds=420.0,
        ),
        TenantFlavorState(tenant="b", flavor="a100", pending_jobs=1, nominal_gpus=4),
    ),
    tenants=(
        TenantState("a", weight=2.0, weighted_fair_share=0.75, decayed_usage_gpu_seconds=36e3),
        TenantState("b", weight=1.0, weighted_fair_share=0.0, decayed_usage_gpu_seconds=0.0),
    ),
    flavors=(
        FlavorState("h100", capacity_gpus=16, allocatable_gpus=16, allocated_gpus=12,
                    nodes_ready=2, nodes_not_ready=0),
        FlavorState("a100", capacity_gpus=16, allocatable_gpus=8, allocated_gpus=0,
                    nodes_ready=1, nodes_not_ready=1),
    ),
)  # fmt: skip


def populated_metrics(registry: CollectorRegistry | None = None) -> YushanMetrics:
    """Fresh metrics with at least one sample in every family."""
    metrics = YushanMetrics(registry or CollectorRegistry(), clock=lambda: NOW)
    metrics.job_submitted("a", "h100")
    metrics.job_admitted("a", "h100", wait_seconds=42.0)
    metrics.job_preempted("a", "h100", PreemptionReason.FAIR_SHARE)
    metrics.job_finished("a", "h100", JobOutcome.SUCCEEDED, run_seconds=7200.0)
    metrics.cycle_completed(0.012)
    metrics.dispatch_completed(0.3, ok=False)
    metrics.api_request("/v1/jobs/{job_id}", "get", 200, 0.004)
    metrics.set_leader(True)
    metrics.publish_state(REPORT)
    metrics.accrued(
        {("a", "h100"): 4_305_000}, {("a", "h100"): 1_000_000}, {"a": (-5_000_000, 5_000_000)}
    )
    return metrics
