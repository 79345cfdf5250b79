"""Server-side commands: ``serve`` (everything in one process), ``api``, ``scheduler``,
``db upgrade`` (``simulate`` is :mod:`cli.simulator`; ``doctor`` is a client command:
:mod:`cli.commands.doctor`).

``yushan serve --embedded`` is what ``make run`` starts: the API on SQLite, the scheduler loop,
and the embedded simulated GPU cluster, with a kubeconfig written for ``kubectl``. On first
start it creates the ``admin`` user with a random token (or ``YUSHAN_BOOTSTRAP_TOKEN``), keeps
the token in ``var/admin-token`` (mode 0600) and prints how to use it.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine

from api.app import create_app, prepare_database
from api.settings import ApiSettings
from cli import simulator
from k8s.client import ClientOptions, ClusterClient
from k8s.errors import ClusterError
from k8s.leader import LeaderElector
from k8s.sim.cluster import EmbeddedCluster
from k8s.watcher import ClusterWatcher
from scheduler.logs import configure_logging
from scheduler.loop import InstallationMismatch, LoopSettings, SchedulerLoop
from scheduler.metrics import METRICS, MetricsServer
from scheduler.policy import POLICY_NAMES
from scheduler.settings import SchedulerSettings
from scheduler.wakeup import JobChangeListener
from store import installation as installation_store
from store.db import SessionFactory, create_db_engine, session_factory
from store.migrate import upgrade
from store.settings import DatabaseSettings

log = logging.getLogger("yushan")
STATE_DIR = Path("var")


def register(subparsers: Any) -> None:
    """Add the server-side subcommands to the ``yushan`` parser."""
    serve = subparsers.add_parser(
        "serve", help="run the control plane: API + scheduler (+ embedded cluster)"
    )
    serve.add_argument(
        "--embedded",
        action="store_true",
        help="start the embedded simulated GPU cluster (default when no kubeconfig is given)",
    )
    _cluster_arguments(serve)
    _policy_arguments(serve)
    serve.add_argument("--host", default=None, help="listen address (default YUSHAN_HOST)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default YUSHAN_PORT)")
    serve.add_argument("--nodes", type=Path, default=None, help="embedded cluster nodes YAML")
    serve.add_argument("--time-scale", type=float, default=1.0, help="embedded cluster time scale")
    serve.set_defaults(func=_serve)

    api = subparsers.add_parser("api", help="run only the API server")
    api.add_argument("--host", default=None)
    api.add_argument("--port", type=int, default=None)
    api.add_argument("--workers", type=int, default=1, help="API worker processes")
    api.set_defaults(func=_api)

    scheduler = subparsers.add_parser(
        "scheduler", help="run only the scheduler loop (settings from YUSHAN_* variables)"
    )
    _cluster_arguments(scheduler)
    scheduler.add_argument(
        "--policy", dest="policy_override", choices=POLICY_NAMES, help="override YUSHAN_POLICY"
    )
    scheduler.add_argument(
        "--interval", type=float, default=None, help="override YUSHAN_CYCLE_INTERVAL_SECONDS"
    )
    scheduler.set_defaults(func=_scheduler)

    db = subparsers.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_sub.add_parser("upgrade", help="apply migrations up to the newest")
    db_upgrade.set_defaults(func=_db_upgrade)

    simulator.register(subparsers)


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig path (or KUBECONFIG)")
    parser.add_argument("--context", default=None, help="kubeconfig context")
    parser.add_argument("--in-cluster", action="store_true", help="use the pod's service account")


def _policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        choices=POLICY_NAMES,
        default=None,
        help="scheduling policy (default YUSHAN_POLICY, else fair+backfill)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="longest pause between scheduling cycles when no event wakes the scheduler "
        "(default YUSHAN_CYCLE_INTERVAL_SECONDS)",
    )


def _cluster_client(
    args: argparse.Namespace, *, installation: str | None = None, create_namespaces: bool = True
) -> ClusterClient:
    options = ClientOptions(create_namespaces=create_namespaces, installation=installation)
    running_in_a_pod = "KUBERNETES_SERVICE_HOST" in os.environ and not (
        args.kubeconfig or "KUBECONFIG" in os.environ
    )
    if args.in_cluster or running_in_a_pod:
        return ClusterClient.in_cluster(options)
    return ClusterClient.from_kubeconfig(args.kubeconfig, args.context, options)


def scheduler_loop(
    settings: SchedulerSettings,
    sessions: SessionFactory,
    client: ClusterClient,
    *,
    policy: str | None = None,
    interval: float | None = None,
    is_leader: Callable[[], bool] = lambda: True,
    view: ClusterWatcher | None = None,
) -> SchedulerLoop:
    """The loop ``serve`` and ``scheduler`` both run: the policy and loop settings built from
    every ``YUSHAN_*`` scheduler setting, with the command's ``--policy`` and ``--interval`` as
    the only overrides."""
    return SchedulerLoop(
        sessions,
        client,
        settings.scheduling_policy(policy),
        settings=_loop_settings(settings, interval),
        is_leader=is_leader,
        view=view,
    )


def _api_settings(args: argparse.Namespace) -> ApiSettings:
    overrides: dict[str, Any] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return ApiSettings(**overrides)


# -- serve ------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    configure_logging(os.environ.get("YUSHAN_LOG_LEVEL", "INFO"), json=False)
    scheduler_settings = SchedulerSettings()
    settings = _api_settings(args)
    if args.policy:  # the API explains the queue with the policy the loop runs
        settings = settings.model_copy(update={"policy": args.policy})
    STATE_DIR.mkdir(exist_ok=True)
    token = _bootstrap_token(settings)
    settings = settings.model_copy(update={"bootstrap_token": token})
    engine = create_db_engine(settings.database_url, pool_size=settings.database_pool_size)
    prepare_database(settings, engine)

    embedded = args.embedded or not (
        args.kubeconfig or args.in_cluster or "KUBECONFIG" in os.environ
    )
    cluster: EmbeddedCluster | None = None
    kubeconfig = args.kubeconfig
    if embedded:
        cluster = EmbeddedCluster(args.nodes, time_scale=args.time_scale)
        cluster.start()
        kubeconfig = str(cluster.write_kubeconfig(STATE_DIR / "kubeconfig").resolve())
    client = ClusterClient.from_kubeconfig(
        kubeconfig,
        args.context,
        ClientOptions(
            installation=installation_store.identity(session_factory(engine)),
            create_namespaces=scheduler_settings.create_tenant_namespaces,
        ),
    )
    stop = threading.Event()
    watcher = _watcher(client, scheduler_settings)
    loop = scheduler_loop(
        scheduler_settings,
        session_factory(engine),
        client,
        policy=args.policy,
        interval=args.interval,
        view=watcher,
    )
    watcher.add_listener(loop.notify)
    METRICS.set_leader(True)  # one process, no election: it always leads
    if not _installation_matches(loop):
        return 2
    _recover(loop)
    _wait_synced(watcher)
    scheduler_thread = threading.Thread(
        target=loop.run_forever, args=(stop,), name="scheduler", daemon=True
    )
    scheduler_thread.start()
    app = create_app(settings, engine, on_job_change=loop.notify)
    app.state.cluster_client = client
    _print_welcome(settings, token, kubeconfig if embedded else None)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        stop.set()
        scheduler_thread.join(timeout=10)
        watcher.stop()
        client.close()
        if cluster is not None:
            cluster.stop()
    return 0


def _watcher(client: ClusterClient, settings: SchedulerSettings) -> ClusterWatcher:
    """The loop's view of the cluster: one LIST per resource, then WATCH (see k8s.watcher)."""
    return ClusterWatcher(client, resync_seconds=settings.resync_interval_seconds).start()


def _loop_settings(settings: SchedulerSettings, interval: float | None) -> LoopSettings:
    return LoopSettings(
        identity=settings.pod_name,
        create_namespaces=settings.create_tenant_namespaces,
        interval_seconds=interval or settings.cycle_interval_seconds,
        debounce_seconds=settings.wake_debounce_seconds,
        finished_pod_ttl_seconds=settings.finished_pod_ttl_seconds,
        estimated_per_tenant=settings.estimated_jobs_per_tenant,
        estimate_interval_seconds=settings.estimate_interval_seconds,
        accrual_interval_seconds=settings.accrual_interval_seconds,
    )


def _wait_synced(watcher: ClusterWatcher, timeout: float = 30.0) -> None:
    if not watcher.wait_synced(timeout):
        log.warning("the cluster cache is not synced after %.0f s; the loop waits for it", timeout)


def _installation_matches(loop: SchedulerLoop) -> bool:
    """The identity guard, before anything is adopted or deleted (see SchedulerLoop)."""
    try:
        loop.check_installation()
    except InstallationMismatch as error:
        log.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        return False
    except ClusterError as error:
        log.warning("could not check the cluster for other installations: %s", error)
    return True


def _recover(loop: SchedulerLoop) -> None:
    try:
        loop.recover()
    except ClusterError as error:
        log.warning("could not reconcile with the cluster at start-up: %s", error)
    except InstallationMismatch as error:
        log.error("not reconciling: %s", error)


def _bootstrap_token(settings: ApiSettings) -> str:
    """The admin token: YUSHAN_BOOTSTRAP_TOKEN, else the one kept in var/, else a new one."""
    if settings.bootstrap_token:
        return settings.bootstrap_token
    path = STATE_DIR / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = f"ysh_admin_{secrets.token_urlsafe(32)}"
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


def _print_welcome(settings: ApiSettings, token: str, kubeconfig: str | None) -> None:
    url = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        f"Yushan control plane on {url}  (API docs: {url}/docs)",
        f"web portal: {url}/ui/  (sign in with the token below)",
        f"database: {settings.database_url}",
    ]
    if kubeconfig:
        lines.append(f"embedded GPU cluster: kubectl --kubeconfig {kubeconfig} get nodes")
    lines += [
        "",
        "Use it from another shell:",
        f"  export YUSHAN_URL={url} YUSHAN_TOKEN={token}",
        "  .venv/bin/yushan flavors create h100 \\",
        "      --label nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3",
        "  .venv/bin/yushan tenants create lab-a --kind academic",
        "  .venv/bin/yushan quota set lab-a examples/quota.yaml",
        "  .venv/bin/yushan submit examples/job.yaml",
        "  .venv/bin/yushan jobs list",
        "",
    ]
    print("\n".join(lines), flush=True)


# -- api / scheduler only ---------------------------------------------------------------------


def _api(args: argparse.Namespace) -> int:
    configure_logging(os.environ.get("YUSHAN_LOG_LEVEL", "INFO"))
    settings = _api_settings(args)
    engine = create_db_engine(settings.database_url)
    prepare_database(settings, engine)
    engine.dispose()
    os.environ["YUSHAN_HOST"] = settings.host
    os.environ["YUSHAN_PORT"] = str(settings.port)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )
    return 0


def _scheduler(args: argparse.Namespace) -> int:
    """The scheduler process: leader election, the loop, and /metrics + /healthz."""
    settings = SchedulerSettings()
    configure_logging(settings.log_level, json=settings.log_format == "json")
    engine: Engine = create_db_engine(settings.database_url)
    upgrade(settings.database_url)
    client = _cluster_client(
        args,
        installation=installation_store.identity(session_factory(engine)),
        create_namespaces=settings.create_tenant_namespaces,
    )
    stop = threading.Event()
    elector = _elector(settings, client) if settings.leader_election else None
    is_leader = elector.is_leader if elector else (lambda: True)
    watcher = _watcher(client, settings)
    loop = scheduler_loop(
        settings,
        session_factory(engine),
        client,
        policy=args.policy_override,
        interval=args.interval,
        is_leader=is_leader,
        view=watcher,
    )
    watcher.add_listener(loop.notify)
    listener: JobChangeListener | None = None
    if engine.dialect.name == "postgresql" and settings.listen_for_job_changes:
        listener = JobChangeListener(settings.database_url, loop.notify).start()
    metrics_server = MetricsServer(
        METRICS,
        settings.metrics_host,
        settings.metrics_port,
        healthy=lambda: not stop.is_set(),
        token=settings.metrics_token,
    )
    metrics_server.start()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    if not _installation_matches(loop):
        metrics_server.stop()
        watcher.stop()
        client.close()
        return 2
    if elector is None:
        METRICS.set_leader(True)
        _recover(loop)
    else:

        def started_leading() -> None:
            log.info("became the leader (%s)", settings.pod_name)
            METRICS.set_leader(True)
            _recover(loop)
            loop.notify()

        def stopped_leading() -> None:
            log.warning("lost leadership (%s); not scheduling", settings.pod_name)
            METRICS.set_leader(False)

        elector.run(stop, started_leading, stopped_leading)
    _wait_synced(watcher)
    try:
        loop.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        metrics_server.stop()
        if listener is not None:
            listener.stop()
        watcher.stop()
        client.close()
    return 0


def _elector(settings: SchedulerSettings, client: ClusterClient) -> LeaderElector:
    return LeaderElector(
        client.api_client,
        settings.pod_namespace,
        settings.leader_election_lease_name,
        settings.pod_name,
        lease_duration=settings.leader_election_lease_duration_seconds,
        renew_deadline=settings.leader_election_renew_deadline_seconds,
        retry_period=settings.leader_election_retry_period_seconds,
    )


def _db_upgrade(_: argparse.Namespace) -> int:
    url = DatabaseSettings().database_url
    upgrade(url)
    print(f"database at {url} is at the newest revision")
    return 0
