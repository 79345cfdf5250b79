"""Every Prometheus metric Yushan exports, defined in this one module (as Kueue does).

Each process (API, scheduler) serves :func:`render` at ``/metrics``. Conventions, checked by
``promtool check metrics`` in the tests:

* every name starts with ``yushan_`` (the process and Python platform collectors are prefixed
  too), values are in base units (seconds, GPUs as a count), ``_total`` only on counters;
* labels are bounded: tenant, flavor, route template, method, status code and small enums.
  Never a job id, user name or raw request path.

There are two kinds of metrics:

* **Events** (counters and histograms) are updated by the code that observes them through the
  small typed methods of :class:`YushanMetrics` (``job_submitted``, ``cycle_completed``, …).
  The module-level functions of the same names update the process-wide :data:`METRICS`.
* **State** (per-tenant and per-flavor gauges) is not updated series by series. The scheduler
  loop publishes a complete immutable :class:`StateReport` after every cycle
  (:func:`publish_state`, usually with :func:`report_from_snapshot`), and
  :class:`SchedulerStateCollector` yields gauges from the latest report at scrape time. A
  tenant or flavor that disappears from the report therefore disappears from ``/metrics`` at
  once: no stale label sets, no ``remove()`` bookkeeping. Unlimited borrowing and lending
  limits are *omitted* (no series) rather than exported as ``+Inf``. Only the leader
  publishes; ``set_leader(False)`` withdraws the report so a deposed replica exports nothing
  stale, and the alert rules aggregate with ``max``/``sum`` across replicas.

Tests build their own :class:`YushanMetrics` on a fresh ``CollectorRegistry``; production code
uses the module-level :data:`REGISTRY` / :data:`METRICS`.
"""

from __future__ import annotations

import enum
import hmac
import importlib.metadata
import math
import platform
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from scheduler.model import JobState, PreemptionReason, Snapshot

PREFIX = "yushan_"

# ``_created`` series double the exposition size and no Yushan dashboard or alert uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream

QUEUE_WAIT_BUCKETS: tuple[float, ...] = (
    1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200,
    86400, 172800, 345600, 604800,
)  # fmt: skip
"""Admission wait: one second to a week."""

RUN_TIME_BUCKETS: tuple[float, ...] = (
    60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800, 345600, 604800,
    1209600,
)  # fmt: skip
"""Job run time: a minute to two weeks."""

CYCLE_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip
"""Scheduling cycle: a millisecond to ten seconds."""

DISPATCH_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip
"""Dispatch (creating a job's pods in the cluster): five milliseconds to thirty seconds."""

API_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip
"""API request: a millisecond to ten seconds."""


class JobOutcome(enum.StrEnum):
    """How a job ended; the closed set keeps the ``outcome`` label bounded."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


def _result(ok: bool) -> str:
    return "success" if ok else "error"


# --- state reports --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantFlavorState:
    """One tenant's queue, usage and GPU quota on one flavor at the end of a cycle.

    ``admitted_jobs`` are admitted but not yet running (pods being created or pending in the
    cluster). ``None`` borrowing/lending limits mean unlimited and produce no series.
    """

    tenant: str
    flavor: str
    pending_jobs: int = 0
    admitted_jobs: int = 0
    running_jobs: int = 0
    gpus_in_use: int = 0
    gpus_borrowed: int = 0
    nominal_gpus: int = 0
    borrowing_limit_gpus: int | None = None
    lending_limit_gpus: int | None = None
    oldest_pending_wait_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TenantState:
    """Fair-share standing of one tenant (the model tracks decayed usage per tenant)."""

    tenant: str
    weight: float = 1.0
    weighted_fair_share: float = 0.0
    decayed_usage_gpu_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class FlavorState:
    """GPU capacity and node health of one flavor.

    ``capacity_gpus`` counts every node of the flavor; ``allocatable_gpus`` only schedulable
    nodes, less what pods Yushan did not create hold; ``allocated_gpus`` what Yushan's jobs hold.
    """

    flavor: str
    capacity_gpus: int = 0
    allocatable_gpus: int = 0
    allocated_gpus: int = 0
    nodes_ready: int = 0
    nodes_not_ready: int = 0


@dataclass(frozen=True, slots=True)
class StateReport:
    """Everything the state gauges show, replaced as a whole after every cycle."""

    tenant_flavors: tuple[TenantFlavorState, ...] = ()
    tenants: tuple[TenantState, ...] = ()
    flavors: tuple[FlavorState, ...] = ()


Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class _GaugeSpec(Generic[Row]):
    """How one gauge family is read from the rows of a report."""

    name: str
    documentation: str
    value: Callable[[Row], float | None]


_TENANT_FLAVOR_GAUGES: tuple[_GaugeSpec[TenantFlavorState], ...] = (
    _GaugeSpec(
        "yushan_tenant_pending_jobs", "Jobs queued and not admitted.", lambda r: r.pending_jobs
    ),
    _GaugeSpec(
        "yushan_tenant_admitted_jobs",
        "Jobs admitted but not yet running.",
        lambda r: r.admitted_jobs,
    ),
    _GaugeSpec("yushan_tenant_running_jobs", "Jobs running.", lambda r: r.running_jobs),
    _GaugeSpec(
        "yushan_tenant_gpus_in_use",
        "GPUs held by admitted and running jobs.",
        lambda r: r.gpus_in_use,
    ),
    _GaugeSpec(
        "yushan_tenant_borrowed_gpus",
        "GPUs in use beyond the nominal quota.",
        lambda r: r.gpus_borrowed,
    ),
    _GaugeSpec("yushan_tenant_nominal_quota_gpus", "Nominal GPU quota.", lambda r: r.nominal_gpus),
    _GaugeSpec(
        "yushan_tenant_borrowing_limit_gpus",
        "GPUs the tenant may borrow beyond nominal quota; no series when unlimited.",
        lambda r: r.borrowing_limit_gpus,
    ),
    _GaugeSpec(
        "yushan_tenant_lending_limit_gpus",
        "GPUs of the nominal quota the tenant may lend; no series when unlimited.",
        lambda r: r.lending_limit_gpus,
    ),
    _GaugeSpec(
        "yushan_tenant_oldest_pending_job_wait_seconds",
        "How long the oldest pending job has waited; 0 when none is pending.",
        lambda r: r.oldest_pending_wait_seconds,
    ),
)

_TENANT_GAUGES: tuple[_GaugeSpec[TenantState], ...] = (
    _GaugeSpec("yushan_tenant_weight", "Fair-share weight.", lambda r: r.weight),
    _GaugeSpec(
        "yushan_tenant_weighted_fair_share",
        "Weighted fair share the cycle orders tenants by: weight x nominal GPUs as a "
        "fraction of all tenants' (0..1).",
        lambda r: r.weighted_fair_share,
    ),
    _GaugeSpec(
        "yushan_tenant_decayed_usage_gpu_seconds",
        "Past GPU usage with exponential decay, in GPU-seconds.",
        lambda r: r.decayed_usage_gpu_seconds,
    ),
)

_FLAVOR_GAUGES: tuple[_GaugeSpec[FlavorState], ...] = (
    _GaugeSpec("yushan_cluster_capacity_gpus", "GPUs on all nodes.", lambda r: r.capacity_gpus),
    _GaugeSpec(
        "yushan_cluster_allocatable_gpus",
        "GPUs Yushan can allocate: schedulable nodes less foreign pods.",
        lambda r: r.allocatable_gpus,
    ),
    _GaugeSpec(
        "yushan_cluster_allocated_gpus", "GPUs held by Yushan jobs.", lambda r: r.allocated_gpus
    ),
)

NODES_METRIC = "yushan_cluster_nodes"


def _families(
    specs: Iterable[_GaugeSpec[Row]],
    rows: Iterable[Row],
    labels: tuple[str, ...],
    label_values: Callable[[Row], list[str]],
) -> Iterator[GaugeMetricFamily]:
    materialized = tuple(rows)
    for spec in specs:
        family = GaugeMetricFamily(spec.name, spec.documentation, labels=labels)
        for row in materialized:
            value = spec.value(row)
            if value is not None:
                family.add_metric(label_values(row), value)
        yield family


class SchedulerStateCollector(Collector):
    """Yields the state gauges from the latest published :class:`StateReport`.

    :meth:`publish` swaps a single reference, which is atomic, so a scrape sees either the old
    or the new report and never a mix. Until the first report (and in processes that never
    publish one, like the API) the collector yields nothing.
    """

    def __init__(self) -> None:
        self._report: StateReport | None = None

    def publish(self, report: StateReport | None) -> None:
        """Replace the report; ``None`` withdraws every state series."""
        self._report = report

    @property
    def report(self) -> StateReport | None:
        return self._report

    def describe(self) -> Iterable[Metric]:
        return list(self._gauges(StateReport()))

    def collect(self) -> Iterable[Metric]:
        report = self._report
        return [] if report is None else list(self._gauges(report))

    @staticmethod
    def _gauges(report: StateReport) -> Iterator[GaugeMetricFamily]:
        yield from _families(
            _TENANT_FLAVOR_GAUGES,
            report.tenant_flavors,
            ("tenant", "flavor"),
            lambda r: [r.tenant, r.flavor],
        )
        yield from _families(_TENANT_GAUGES, report.tenants, ("tenant",), lambda r: [r.tenant])
        yield from _families(_FLAVOR_GAUGES, report.flavors, ("flavor",), lambda r: [r.flavor])
        nodes = GaugeMetricFamily(
            NODES_METRIC, "Nodes by flavor and readiness.", labels=("flavor", "ready")
        )
        for row in report.flavors:
            nodes.add_metric([row.flavor, "true"], row.nodes_ready)
            nodes.add_metric([row.flavor, "false"], row.nodes_not_ready)
        yield nodes


class _PrefixedCollector(Collector):
    """Re-exports another collector's families under the ``yushan_`` prefix."""

    def __init__(self, inner: Collector) -> None:
        self._inner = inner

    def collect(self) -> Iterable[Metric]:
        return [self._prefixed(family) for family in self._inner.collect()]

    @staticmethod
    def _prefixed(family: Metric) -> Metric:
        renamed = Metric(PREFIX + family.name, family.documentation, family.type)
        renamed.samples = [
            Sample(PREFIX + s.name, s.labels, s.value, s.timestamp, s.exemplar)
            for s in family.samples
        ]
        return renamed


# --- snapshot -> report ---------------------------------------------------------------------


def report_from_snapshot(
    snapshot: Snapshot,
    *,
    started: Callable[[JobState], bool] = lambda job: True,
    weighted_fair_shares: Mapping[str, float] | None = None,
    usage_half_life_seconds: float | None = None,
) -> StateReport:
    """Summarise a cycle's snapshot for the state gauges.

    ``started`` tells running jobs from admitted ones whose pods are not running yet (the
    snapshot does not distinguish them; by default every job in ``snapshot.running`` counts as
    running). ``weighted_fair_shares`` are the cycle's per-tenant shares; tenants without one
    report 0. Nodes that are not schedulable count as not ready.

    The snapshot's decayed usage is an exponentially weighted *average* of GPUs held; with
    ``usage_half_life_seconds`` it is exported as GPU-seconds: the average times the decay's
    time constant (``half_life / ln 2``), i.e. the integral of past GPU usage weighted by
    ``2 ** (-age / half_life)``. Without it the average is exported unchanged.
    """
    shares = weighted_fair_shares or {}
    scale = 1.0 if usage_half_life_seconds is None else usage_half_life_seconds / math.log(2)
    return StateReport(
        tenant_flavors=_tenant_flavor_rows(snapshot, started),
        tenants=tuple(
            TenantState(
                tenant=name,
                weight=spec.weight,
                weighted_fair_share=shares.get(name, 0.0),
                decayed_usage_gpu_seconds=snapshot.usage.tenants.get(name, 0.0) * scale,
            )
            for name, spec in sorted(snapshot.tenants.items())
        ),
        flavors=_flavor_rows(snapshot),
    )


@dataclass(slots=True)
class _TenantFlavorTally:
    pending: int = 0
    admitted: int = 0
    running: int = 0
    gpus: int = 0
    oldest_submit: float | None = None


def _tenant_flavor_rows(
    snapshot: Snapshot, started: Callable[[JobState], bool]
) -> tuple[TenantFlavorState, ...]:
    tallies: dict[tuple[str, str], _TenantFlavorTally] = defaultdict(_TenantFlavorTally)
    for job in snapshot.queued:
        tally = tallies[(job.tenant, job.flavor)]
        tally.pending += 1
        if tally.oldest_submit is None or job.submitted_at < tally.oldest_submit:
            tally.oldest_submit = job.submitted_at
    for job in snapshot.running:
        tally = tallies[(job.tenant, job.flavor)]
        if started(job):
            tally.running += 1
        else:
            tally.admitted += 1
        tally.gpus += job.total().gpu
    for name, declared in snapshot.tenants.items():
        for flavor, resource in declared.quotas:
            if resource == "gpu":
                tallies.setdefault((name, flavor), _TenantFlavorTally())

    rows = []
    for (tenant, flavor), tally in sorted(tallies.items()):
        tenant_spec = snapshot.tenants.get(tenant)
        quota = tenant_spec.quotas.get((flavor, "gpu")) if tenant_spec else None
        nominal = quota.nominal if quota else 0
        oldest = tally.oldest_submit
        rows.append(
            TenantFlavorState(
                tenant=tenant,
                flavor=flavor,
                pending_jobs=tally.pending,
                admitted_jobs=tally.admitted,
                running_jobs=tally.running,
                gpus_in_use=tally.gpus,
                gpus_borrowed=max(0, tally.gpus - nominal),
                nominal_gpus=nominal,
                borrowing_limit_gpus=quota.borrowing_limit if quota else None,
                lending_limit_gpus=quota.lending_limit if quota else None,
                oldest_pending_wait_seconds=0.0 if oldest is None else snapshot.now - oldest,
            )
        )
    return tuple(rows)


def _flavor_rows(snapshot: Snapshot) -> tuple[FlavorState, ...]:
    rows: dict[str, FlavorState] = {}
    for node in snapshot.nodes:
        if node.flavor is None:
            continue
        row = rows.get(node.flavor, FlavorState(flavor=node.flavor))
        usable = node.allocatable.gpu - node.foreign.gpu if node.schedulable else 0
        rows[node.flavor] = FlavorState(
            flavor=node.flavor,
            capacity_gpus=row.capacity_gpus + node.allocatable.gpu,
            allocatable_gpus=row.allocatable_gpus + max(0, usable),
            allocated_gpus=row.allocated_gpus,
            nodes_ready=row.nodes_ready + int(node.schedulable),
            nodes_not_ready=row.nodes_not_ready + int(not node.schedulable),
        )
    allocated: dict[str, int] = defaultdict(int)
    for job in snapshot.running:
        allocated[job.flavor] += job.total().gpu
    return tuple(
        FlavorState(
            flavor=row.flavor,
            capacity_gpus=row.capacity_gpus,
            allocatable_gpus=row.allocatable_gpus,
            allocated_gpus=allocated[row.flavor],
            nodes_ready=row.nodes_ready,
            nodes_not_ready=row.nodes_not_ready,
        )
        for row in sorted(rows.values(), key=lambda r: r.flavor)
    )


# --- the metric set -------------------------------------------------------------------------


def yushan_version() -> str:
    try:
        return importlib.metadata.version("yushan")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class YushanMetrics:
    """All of Yushan's metrics, registered on one registry, with a typed update per family."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.time,
        process_metrics: bool = True,
    ) -> None:
        self.registry = registry
        self._clock = clock
        self.state = SchedulerStateCollector()
        registry.register(self.state)
        if process_metrics:
            ProcessCollector(namespace="yushan", registry=registry)
            registry.register(_PrefixedCollector(PlatformCollector(registry=None)))

        tenant_flavor = ("tenant", "flavor")
        self.jobs_submitted = Counter(
            "yushan_jobs_submitted_total", "Jobs accepted by the API.", tenant_flavor,
            registry=registry,
        )  # fmt: skip
        self.jobs_admitted = Counter(
            "yushan_jobs_admitted_total", "Jobs admitted by the scheduler.", tenant_flavor,
            registry=registry,
        )  # fmt: skip
        self.jobs_preempted = Counter(
            "yushan_jobs_preempted_total",
            "Jobs preempted, by preemption reason.",
            (*tenant_flavor, "reason"),
            registry=registry,
        )
        self.jobs_finished = Counter(
            "yushan_jobs_finished_total",
            "Jobs that ended, by outcome.",
            (*tenant_flavor, "outcome"),
            registry=registry,
        )
        self.admission_wait = Histogram(
            "yushan_job_admission_wait_seconds",
            "Time from submission (or requeue) to admission.",
            tenant_flavor,
            buckets=QUEUE_WAIT_BUCKETS,
            registry=registry,
        )
        self.run_duration = Histogram(
            "yushan_job_run_duration_seconds",
            "Time from admission to the end of a job, by outcome.",
            (*tenant_flavor, "outcome"),
            buckets=RUN_TIME_BUCKETS,
            registry=registry,
        )
        self.cycle_duration = Histogram(
            "yushan_scheduling_cycle_duration_seconds",
            "Duration of scheduling cycles, by result (success or error).",
            ("result",),
            buckets=CYCLE_BUCKETS,
            registry=registry,
        )
        self.dispatch_duration = Histogram(
            "yushan_dispatch_duration_seconds",
            "Time to create an admitted job's objects in the cluster, by result.",
            ("result",),
            buckets=DISPATCH_BUCKETS,
            registry=registry,
        )
        self.api_request_duration = Histogram(
            "yushan_api_request_duration_seconds",
            "API request duration by route template, method and status code.",
            ("route", "method", "status"),
            buckets=API_BUCKETS,
            registry=registry,
        )
        self.spend = Counter(
            "yushan_tenant_spend_credits_total",
            "Credits charged for run time (usage ledger), by tenant and flavor.",
            tenant_flavor,
            registry=registry,
        )
        self.credited = Counter(
            "yushan_tenant_credited_credits_total",
            "Credits given back for work lost to preemption, by tenant and flavor.",
            tenant_flavor,
            registry=registry,
        )
        self.wallet_balance = Gauge(
            "yushan_tenant_wallet_balance_credits",
            "A metered tenant's wallet balance (negative: postpaid use not yet paid).",
            ("tenant",),
            registry=registry,
        )
        self.wallet_available = Gauge(
            "yushan_tenant_wallet_available_credits",
            "What a metered tenant may still spend: balance plus credit limit.",
            ("tenant",),
            registry=registry,
        )
        self.leader = Gauge(
            "yushan_scheduler_leader",
            "1 if this scheduler replica holds the leader lease, else 0.",
            registry=registry,
        )
        self.last_successful_cycle = Gauge(
            "yushan_scheduler_last_successful_cycle_timestamp_seconds",
            "Unix time of the last scheduling cycle that completed successfully.",
            registry=registry,
        )
        self.build_info = Info("yushan_build", "Yushan build information.", registry=registry)
        self.build_info.info(
            {
                "version": yushan_version(),
                "python_version": platform.python_version(),
                "python_implementation": platform.python_implementation(),
            }
        )

    def job_submitted(self, tenant: str, flavor: str) -> None:
        self.jobs_submitted.labels(tenant, flavor).inc()

    def job_admitted(self, tenant: str, flavor: str, wait_seconds: float) -> None:
        self.jobs_admitted.labels(tenant, flavor).inc()
        self.admission_wait.labels(tenant, flavor).observe(wait_seconds)

    def job_preempted(self, tenant: str, flavor: str, reason: PreemptionReason | str) -> None:
        """Count a preemption; ``reason`` must be a :class:`PreemptionReason` value."""
        self.jobs_preempted.labels(tenant, flavor, PreemptionReason(reason).value).inc()

    def job_finished(
        self, tenant: str, flavor: str, outcome: JobOutcome | str, run_seconds: float
    ) -> None:
        """Count a finished job; ``outcome`` must be a :class:`JobOutcome` value."""
        label = JobOutcome(outcome).value
        self.jobs_finished.labels(tenant, flavor, label).inc()
        self.run_duration.labels(tenant, flavor, label).observe(run_seconds)

    def accrued(
        self,
        spend: Mapping[tuple[str, str], int],
        credited: Mapping[tuple[str, str], int],
        wallets: Mapping[str, tuple[int, int]],
    ) -> None:
        """Count one committed accrual: micro-credits charged and credited per (tenant,
        flavor); ``wallets`` (tenant -> balance, available) replaces every wallet gauge."""
        for (tenant, flavor), micro in spend.items():
            self.spend.labels(tenant, flavor).inc(micro / 1_000_000)
        for (tenant, flavor), micro in credited.items():
            self.credited.labels(tenant, flavor).inc(micro / 1_000_000)
        if not wallets:
            return
        self.wallet_balance.clear()
        self.wallet_available.clear()
        for tenant, (balance, available) in wallets.items():
            self.wallet_balance.labels(tenant).set(balance / 1_000_000)
            self.wallet_available.labels(tenant).set(available / 1_000_000)

    def cycle_completed(self, duration_seconds: float, *, ok: bool = True) -> None:
        """Record a scheduling cycle; a successful one also stamps the last-success time."""
        self.cycle_duration.labels(_result(ok)).observe(duration_seconds)
        if ok:
            self.last_successful_cycle.set(self._clock())

    def dispatch_completed(self, duration_seconds: float, ok: bool) -> None:
        self.dispatch_duration.labels(_result(ok)).observe(duration_seconds)

    def api_request(
        self, route_template: str, method: str, status: int, duration_seconds: float
    ) -> None:
        """Record an API request under its route *template* (``/v1/jobs/{job_id}``, from
        ``request.scope["route"].path`` in FastAPI), never the raw path, which would make the
        label unbounded. Requests that match no route should use a fixed template such as
        ``"<unmatched>"``."""
        self.api_request_duration.labels(route_template, method.upper(), str(status)).observe(
            duration_seconds
        )

    def set_leader(self, is_leader: bool) -> None:
        """Record leadership. Losing it withdraws the state report, which would go stale."""
        self.leader.set(1 if is_leader else 0)
        if not is_leader:
            self.state.publish(None)

    def publish_state(self, report: StateReport) -> None:
        """Replace the state gauges with ``report``; the scheduler loop calls it every cycle."""
        self.state.publish(report)

    def render(self, accept_header: str = "") -> tuple[bytes, str]:
        """The exposition for ``/metrics``: payload and content type (OpenMetrics if asked)."""
        encoder, content_type = choose_encoder(accept_header)
        return encoder(self.registry), content_type


# --- a /metrics endpoint for processes without a web framework -----------------------------


class MetricsServer:
    """Serves ``GET /metrics`` and ``GET /healthz`` from a background thread.

    For the scheduler process, which has no web framework (the API serves :func:`render` from a
    FastAPI route instead). ``healthy`` decides between 200 and 503 on ``/healthz``. Port 0
    binds a free port; :attr:`port` tells which.
    """

    def __init__(
        self,
        metrics: YushanMetrics,
        host: str = "127.0.0.1",
        port: int = 9090,
        healthy: Callable[[], bool] = lambda: True,
        token: str | None = None,
    ) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(metrics, healthy, token))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def bearer_token_ok(authorization: str | None, token: str | None) -> bool:
    """Whether a ``/metrics`` request may read the metrics: always without a configured token
    (``YUSHAN_METRICS_TOKEN``), else only with ``Authorization: Bearer <token>``."""
    if not token:
        return True
    scheme, _, secret = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(secret.strip(), token)


def _handler(
    metrics: YushanMetrics, healthy: Callable[[], bool], token: str | None = None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                if not bearer_token_ok(self.headers.get("Authorization"), token):
                    self._reply(401, b"metrics need a bearer token\n", "text/plain")
                    return
                self._reply(200, *metrics.render(self.headers.get("Accept", "")))
            elif self.path == "/healthz":
                ok = healthy()
                self._reply(200 if ok else 503, b"ok\n" if ok else b"unhealthy\n", "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes every few seconds would drown the logs."""

    return Handler


REGISTRY = CollectorRegistry()
"""The process-wide registry served at ``/metrics`` (not ``prometheus_client.REGISTRY``)."""

METRICS = YushanMetrics(REGISTRY)
"""The process-wide metric set; the functions below update it."""

job_submitted = METRICS.job_submitted
job_admitted = METRICS.job_admitted
job_preempted = METRICS.job_preempted
job_finished = METRICS.job_finished
cycle_completed = METRICS.cycle_completed
dispatch_completed = METRICS.dispatch_completed
api_request = METRICS.api_request
set_leader = METRICS.set_leader
publish_state = METRICS.publish_state
render = METRICS.render
