"""The metric update functions, the state collector and the naming conventions."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

import scheduler.metrics as metrics_module
from scheduler.metrics import (
    FlavorState,
    JobOutcome,
    MetricsServer,
    StateReport,
    TenantFlavorState,
    TenantState,
    YushanMetrics,
    report_from_snapshot,
)
from scheduler.model import PreemptionReason
from tests.observability.builders import SnapshotBuilder
from tests.observability.populate import NOW, REPORT, populated_metrics


@pytest.fixture
def metrics() -> YushanMetrics:
    return YushanMetrics(CollectorRegistry(), clock=lambda: NOW, process_metrics=False)


def value(metrics: YushanMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def state_names(metrics: YushanMetrics) -> set[str]:
    return {
        sample.name
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name.startswith(("yushan_tenant_", "yushan_cluster_"))
    }


# --- events ---------------------------------------------------------------------------------


def test_job_counters_and_admission_wait(metrics: YushanMetrics) -> None:
    metrics.job_submitted("a", "h100")
    metrics.job_submitted("a", "h100")
    metrics.job_admitted("a", "h100", wait_seconds=90.0)

    assert value(metrics, "yushan_jobs_submitted_total", tenant="a", flavor="h100") == 2
    assert value(metrics, "yushan_jobs_admitted_total", tenant="a", flavor="h100") == 1
    wait = {"tenant": "a", "flavor": "h100"}
    assert value(metrics, "yushan_job_admission_wait_seconds_sum", **wait) == 90.0
    assert value(metrics, "yushan_job_admission_wait_seconds_bucket", **wait, le="60.0") == 0
    assert value(metrics, "yushan_job_admission_wait_seconds_bucket", **wait, le="120.0") == 1


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        (PreemptionReason.FAIR_SHARE, "FairSharePreemption"),
        (PreemptionReason.RECLAIM_NOMINAL, "ReclaimNominalQuota"),
        ("InTenantPriority", "InTenantPriority"),
    ],
)
def test_preemptions_are_counted_by_reason(
    metrics: YushanMetrics, reason: PreemptionReason | str, label: str
) -> None:
    metrics.job_preempted("b", "a100", reason)

    assert value(metrics, "yushan_jobs_preempted_total", tenant="b", flavor="a100", reason=label)


def test_unknown_reasons_and_outcomes_are_rejected_to_keep_labels_bounded(
    metrics: YushanMetrics,
) -> None:
    with pytest.raises(ValueError, match="job-123"):
        metrics.job_preempted("a", "h100", "job-123")
    with pytest.raises(ValueError, match="exploded"):
        metrics.job_finished("a", "h100", "exploded", 1.0)


@pytest.mark.parametrize("outcome", list(JobOutcome))
def test_finished_jobs_by_outcome(metrics: YushanMetrics, outcome: JobOutcome) -> None:
    metrics.job_finished("a", "h100", outcome.value, run_seconds=3600.0)

    labels = {"tenant": "a", "flavor": "h100", "outcome": outcome.value}
    assert value(metrics, "yushan_jobs_finished_total", **labels) == 1
    assert value(metrics, "yushan_job_run_duration_seconds_sum", **labels) == 3600.0


def test_successful_cycles_stamp_the_last_success_time() -> None:
    now = [100.0]
    metrics = YushanMetrics(CollectorRegistry(), clock=lambda: now[0], process_metrics=False)

    metrics.cycle_completed(0.02)
    now[0] = 160.0
    metrics.cycle_completed(0.5, ok=False)

    stamp = "yushan_scheduler_last_successful_cycle_timestamp_seconds"
    assert value(metrics, stamp) == 100.0
    assert value(metrics, "yushan_scheduling_cycle_duration_seconds_count", result="success") == 1
    assert value(metrics, "yushan_scheduling_cycle_duration_seconds_count", result="error") == 1


@pytest.mark.parametrize(("ok", "result"), [(True, "success"), (False, "error")])
def test_dispatches_by_result(metrics: YushanMetrics, ok: bool, result: str) -> None:
    metrics.dispatch_completed(0.25, ok=ok)

    assert value(metrics, "yushan_dispatch_duration_seconds_sum", result=result) == 0.25


def test_api_requests_by_route_template_method_and_status(metrics: YushanMetrics) -> None:
    metrics.api_request("/v1/jobs/{job_id}", "get", 404, 0.002)

    labels = {"route": "/v1/jobs/{job_id}", "method": "GET", "status": "404"}
    assert value(metrics, "yushan_api_request_duration_seconds_count", **labels) == 1
    assert value(metrics, "yushan_api_request_duration_seconds_bucket", **labels, le="0.001") == 0
    assert value(metrics, "yushan_api_request_duration_seconds_bucket", **labels, le="0.0025") == 1


def test_build_info_carries_the_package_version(metrics: YushanMetrics) -> None:
    version = importlib.metadata.version("yushan")
    samples = [
        s for f in metrics.registry.collect() for s in f.samples if s.name == "yushan_build_info"
    ]

    assert len(samples) == 1
    assert samples[0].labels["version"] == version
    assert samples[0].value == 1


# --- state ----------------------------------------------------------------------------------


def test_state_gauges_come_from_the_published_report(metrics: YushanMetrics) -> None:
    metrics.publish_state(REPORT)

    a = {"tenant": "a", "flavor": "h100"}
    assert value(metrics, "yushan_tenant_pending_jobs", **a) == 3
    assert value(metrics, "yushan_tenant_admitted_jobs", **a) == 1
    assert value(metrics, "yushan_tenant_running_jobs", **a) == 2
    assert value(metrics, "yushan_tenant_gpus_in_use", **a) == 12
    assert value(metrics, "yushan_tenant_borrowed_gpus", **a) == 4
    assert value(metrics, "yushan_tenant_nominal_quota_gpus", **a) == 8
    assert value(metrics, "yushan_tenant_borrowing_limit_gpus", **a) == 8
    assert value(metrics, "yushan_tenant_lending_limit_gpus", **a) == 2
    assert value(metrics, "yushan_tenant_oldest_pending_job_wait_seconds", **a) == 420
    assert value(metrics, "yushan_tenant_weight", tenant="a") == 2
    assert value(metrics, "yushan_tenant_weighted_fair_share", tenant="a") == 0.75
    assert value(metrics, "yushan_tenant_decayed_usage_gpu_seconds", tenant="a") == 36e3
    assert value(metrics, "yushan_cluster_capacity_gpus", flavor="a100") == 16
    assert value(metrics, "yushan_cluster_allocatable_gpus", flavor="a100") == 8
    assert value(metrics, "yushan_cluster_allocated_gpus", flavor="h100") == 12
    assert value(metrics, "yushan_cluster_nodes", flavor="a100", ready="true") == 1
    assert value(metrics, "yushan_cluster_nodes", flavor="a100", ready="false") == 1


def test_unlimited_borrowing_and_lending_limits_have_no_series(metrics: YushanMetrics) -> None:
    metrics.publish_state(REPORT)

    b = {"tenant": "b", "flavor": "a100"}
    assert value(metrics, "yushan_tenant_nominal_quota_gpus", **b) == 4
    assert value(metrics, "yushan_tenant_borrowing_limit_gpus", **b) is None
    assert value(metrics, "yushan_tenant_lending_limit_gpus", **b) is None


def test_a_new_report_drops_the_series_of_vanished_tenants_and_flavors(
    metrics: YushanMetrics,
) -> None:
    metrics.publish_state(REPORT)
    metrics.publish_state(
        StateReport(
            tenant_flavors=(TenantFlavorState("b", "a100", pending_jobs=5),),
            tenants=(TenantState("b"),),
            flavors=(FlavorState("a100", capacity_gpus=16),),
        )
    )

    assert value(metrics, "yushan_tenant_pending_jobs", tenant="b", flavor="a100") == 5
    assert value(metrics, "yushan_tenant_pending_jobs", tenant="a", flavor="h100") is None
    assert value(metrics, "yushan_tenant_weight", tenant="a") is None
    assert value(metrics, "yushan_cluster_capacity_gpus", flavor="h100") is None
    assert value(metrics, "yushan_cluster_nodes", flavor="h100", ready="true") is None


def test_no_state_series_before_a_report_nor_after_losing_leadership(
    metrics: YushanMetrics,
) -> None:
    assert state_names(metrics) == set()

    metrics.set_leader(True)
    metrics.publish_state(REPORT)
    assert "yushan_tenant_pending_jobs" in state_names(metrics)
    assert value(metrics, "yushan_scheduler_leader") == 1

    metrics.set_leader(False)
    assert state_names(metrics) == set()
    assert value(metrics, "yushan_scheduler_leader") == 0


# --- snapshot -> report ---------------------------------------------------------------------


def test_report_from_snapshot_counts_queues_usage_and_quota() -> None:
    snapshot = (
        SnapshotBuilder(now=10_000.0)
        .node("n1", "h100", gpus=8)
        .node("n2", "h100", gpus=8, foreign_gpus=2)
        .node("n3", "h100", gpus=8, schedulable=False)
        .node("cpu-1", None, gpus=0)
        .tenant("a", weight=2.0, borrowing_limit=4, usage=5000.0, h100=8)
        .tenant("b", a100=4)
        .queued("a", "h100", waited=300)
        .queued("a", "h100", waited=1200)
        .running("a", "h100", gpus=4, workers=3)
        .build()
    )

    report = report_from_snapshot(snapshot, weighted_fair_shares={"a": 1.5})

    assert report.tenant_flavors == (
        TenantFlavorState(
            tenant="a",
            flavor="h100",
            pending_jobs=2,
            running_jobs=1,
            gpus_in_use=12,
            gpus_borrowed=4,
            nominal_gpus=8,
            borrowing_limit_gpus=4,
            oldest_pending_wait_seconds=1200.0,
        ),
        TenantFlavorState(tenant="b", flavor="a100", nominal_gpus=4),
    )
    assert report.tenants == (
        TenantState("a", weight=2.0, weighted_fair_share=1.5, decayed_usage_gpu_seconds=5000.0),
        TenantState("b", weight=1.0, weighted_fair_share=0.0, decayed_usage_gpu_seconds=0.0),
    )
    assert report.flavors == (
        FlavorState(
            "h100",
            capacity_gpus=24,
            allocatable_gpus=14,
            allocated_gpus=12,
            nodes_ready=2,
            nodes_not_ready=1,
        ),
    )


@pytest.mark.parametrize(
    ("started_ids", "running", "admitted"),
    [(None, 2, 0), (set(), 0, 2), ({"job-1"}, 1, 1)],
)
def test_report_from_snapshot_tells_admitted_from_running(
    started_ids: set[str] | None, running: int, admitted: int
) -> None:
    snapshot = (
        SnapshotBuilder().tenant("a", h100=8).running("a", "h100").running("a", "h100").build()
    )

    report = (
        report_from_snapshot(snapshot)
        if started_ids is None
        else report_from_snapshot(snapshot, started=lambda job: job.id in started_ids)
    )

    (row,) = report.tenant_flavors
    assert (row.running_jobs, row.admitted_jobs) == (running, admitted)


# --- naming conventions and exposition ------------------------------------------------------


def families(metrics: YushanMetrics) -> Iterator[tuple[str, str, set[str], list[str]]]:
    """(family name, type, label names, sample names) of everything the registry exports."""
    for family in metrics.registry.collect():
        labels = {label for sample in family.samples for label in sample.labels}
        yield family.name, family.type, labels, [s.name for s in family.samples]


def test_every_metric_is_prefixed_and_suffixed_by_convention() -> None:
    exported = list(families(populated_metrics()))

    assert len(exported) > 30
    for name, kind, _, samples in exported:
        assert name.startswith("yushan_"), name
        assert samples, name
        for sample in samples:
            assert sample.endswith("_total") == (kind == "counter"), sample


def test_no_metric_has_an_unbounded_label() -> None:
    unbounded = {"job", "job_id", "id", "user", "path", "url", "pod", "node", "namespace"}

    for name, _, labels, _ in families(populated_metrics()):
        assert not labels & unbounded, name


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("", "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text"),
    ],
)
def test_render_negotiates_the_exposition_format(accept: str, content_type: str) -> None:
    payload, returned_type = populated_metrics().render(accept)

    assert returned_type.startswith(content_type)
    assert b'yushan_tenant_pending_jobs{flavor="h100",tenant="a"} 3.0' in payload


def test_module_level_functions_update_the_process_registry() -> None:
    name = "yushan_jobs_submitted_total"
    labels = {"tenant": "module-test", "flavor": "h100"}
    before = metrics_module.REGISTRY.get_sample_value(name, labels) or 0.0

    metrics_module.job_submitted("module-test", "h100")

    assert metrics_module.REGISTRY.get_sample_value(name, labels) == before + 1
    payload, _ = metrics_module.render()
    assert b"yushan_process_cpu_seconds_total" in payload
    assert b"yushan_python_info" in payload


# --- the scheduler's /metrics and /healthz endpoint -----------------------------------------


@pytest.mark.parametrize(
    ("path", "healthy", "status", "body"),
    [
        ("/metrics", True, 200, b"yushan_tenant_pending_jobs"),
        ("/healthz", True, 200, b"ok"),
        ("/healthz", False, 503, b"unhealthy"),
        ("/jobs/123", True, 404, b"not found"),
    ],
)
def test_metrics_server_endpoints(path: str, healthy: bool, status: int, body: bytes) -> None:
    server = MetricsServer(populated_metrics(), "127.0.0.1", 0, healthy=lambda: healthy)
    server.start()
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}{path}", timeout=5)
    finally:
        server.stop()

    assert response.status_code == status
    assert body in response.content
