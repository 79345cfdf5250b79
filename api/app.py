"""The FastAPI application factory.

``create_app`` wires settings, the database engine, the problem+json error handlers, the body
size limit and one router per resource. It performs no I/O itself: migrations and the bootstrap
admin are applied by :func:`prepare_database`, which the server runs once at start-up.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from sqlalchemy import Engine

from api.authcache import PrincipalCache
from api.limits import BodySizeLimit
from api.observability import RequestInstrumentation
from api.openapi import install_openapi
from api.problems import install_problem_handlers
from api.queuecache import QueueCache
from api.routers import (
    arrays,
    audit,
    cluster,
    cohorts,
    flavors,
    health,
    job_controls,
    jobs,
    limits,
    prices,
    queue,
    scheduler,
    share,
    tenants,
    usage,
    users,
    wallets,
)
from api.settings import ApiSettings
from api.ui.portal import install_portal
from k8s.client import ClusterClient
from k8s.errors import ClusterError
from scheduler.settings import SchedulerSettings
from store import users as user_store
from store.db import create_db_engine, read_session_factory, session_factory, transaction
from store.migrate import upgrade
from store.notify import signal_job_changes
from store.submissions import SubmissionWriter

API_VERSION = "1.0"
log = logging.getLogger("yushan.api")


def create_app(
    settings: ApiSettings | None = None,
    engine: Engine | None = None,
    *,
    on_job_change: Callable[[], None] | None = None,
) -> FastAPI:
    """``on_job_change`` runs after every committed submission, cancel or quota change (the
    in-process scheduler's wake-up); on PostgreSQL such commits also NOTIFY other processes."""
    settings = settings or ApiSettings()
    engine = engine or create_db_engine(
        settings.database_url, pool_size=settings.database_pool_size
    )
    app = FastAPI(
        lifespan=_lifespan(settings.database_pool_size),
        title="Yushan",
        version=API_VERSION,
        summary="Fair-share GPU job scheduler for shared Kubernetes GPU clouds",
    )
    app.state.settings = settings
    # The queue is explained with the policy the scheduler runs (every YUSHAN_* scheduler
    # setting, the preset from YUSHAN_POLICY), so its order is the order the loop uses.
    scheduler_settings = SchedulerSettings()
    app.state.policy = scheduler_settings.scheduling_policy(settings.policy)
    # The queue's explanation is kept at most one scheduler cycle interval: what the clock alone
    # changes (a backoff ending) the scheduler does not act on sooner either.
    app.state.queue_cache = QueueCache(scheduler_settings.cycle_interval_seconds)
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.read_session_factory = read_session_factory(engine)
    signal_job_changes(app.state.session_factory, on_job_change)
    app.state.submission_writer = SubmissionWriter(app.state.session_factory)
    app.state.principal_cache = PrincipalCache(settings.auth_cache_seconds)
    app.state.principal_lookups = {}  # token hash -> the lookup in flight (api.deps)
    install_problem_handlers(app)
    install_openapi(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestInstrumentation)
    app.state.cluster_client = cluster_client(settings)
    resources = (health, cohorts, flavors, tenants, limits, users)
    accounting = (prices, wallets, usage)
    for module in (
        *resources,
        jobs,
        job_controls,
        arrays,
        queue,
        cluster,
        scheduler,
        share,
        audit,
        *accounting,
    ):
        app.include_router(module.router)
    install_portal(app, settings)
    _match_jobs_first(app)
    return app


HOT_ROUTERS = (jobs.router, job_controls.router, arrays.router)
"""Matched first: ``/v1/jobs`` takes nearly all the traffic under load."""


def _match_jobs_first(app: FastAPI) -> None:
    """Move the job routers to the front of the routing table. The router tries its routes in
    order, and each included router it tries first costs a scan of its routes (about a fifth of
    a submission's event-loop time when ``/v1/jobs`` came seventh). No other router has a path
    under their prefixes, so no request is routed differently; the OpenAPI document keeps the
    order they were included in (``app.state.documented_routes``)."""
    app.state.documented_routes = list(app.router.routes)
    hot = [
        route
        for route in app.router.routes
        if getattr(route, "original_router", None) in HOT_ROUTERS
    ]
    assert len(hot) == len(HOT_ROUTERS), "the job routers are included routers"
    app.router.routes[:] = [*hot, *(r for r in app.router.routes if r not in hot)]


def cluster_client(settings: ApiSettings) -> ClusterClient | None:
    """The API's connection to the cluster (for job logs): ``YUSHAN_KUBECONFIG``, else the
    pod's service account when running in the cluster (as under Helm), else none (503)."""
    if settings.kubeconfig:
        return ClusterClient.from_kubeconfig(settings.kubeconfig)
    in_cluster = settings.in_cluster
    if in_cluster is None:
        in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
    if not in_cluster:
        return None
    try:
        return ClusterClient.in_cluster()
    except ClusterError as error:
        log.warning("no cluster connection for job logs: %s", error)
        return None


def _lifespan(concurrency: int) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Serve at most as many requests at once as there are pooled connections, so no request
    waits for a connection while holding a worker thread; at shutdown, write the submissions
    still queued.

    What start-up built (modules and the app: some 170,000 objects) is frozen out of the
    garbage collector (an O(1) move, no collection): each full collection scanned it all,
    100-200 ms during which the process answered nothing, every few seconds under a list load
    (the p99). Thawed at shutdown, so an app that stops (as in tests) leaves nothing
    uncollectable behind."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = concurrency
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
        writer: SubmissionWriter = app.state.submission_writer
        await to_thread.run_sync(writer.close)

    return lifespan


def prepare_database(settings: ApiSettings, engine: Engine) -> bool:
    """Apply migrations; create the bootstrap admin if configured. True if it was created."""
    upgrade(settings.database_url)
    if not settings.bootstrap_token:
        return False
    with transaction(session_factory(engine)) as session:
        return user_store.bootstrap_admin(session, settings.bootstrap_token)
