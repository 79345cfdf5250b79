"""``yushan doctor``: is this installation usable, and if not, what to do about it.

It uses the CLI's own configuration (``--url``/``--token``, ``YUSHAN_URL``/``YUSHAN_TOKEN``, the
config file), so right after ``make run`` it needs nothing but the admin token. One line per
check, ``ok`` or ``FAIL`` with the fix:

* **server** — ``/healthz`` answers at the configured URL;
* **token** — present, and accepted (``/v1/users/me``);
* **database** — ``/readyz``: the database answers and carries the newest schema;
* **scheduler** — a scheduler committed a cycle recently (its heartbeat, ``/v1/scheduler``),
  and which replica leads;
* **flavors** — every flavor selects at least one node the scheduler reported;
* **cluster**, **rbac**, **gpu nodes** — through a kubeconfig: ``--kubeconfig``, else
  ``$KUBECONFIG``, else ``var/kubeconfig`` (what ``yushan serve --embedded`` writes in its working
  directory), else ``~/.kube/config``, else the pod's service account inside a cluster. RBAC is
  checked for what the scheduler's mode needs (:mod:`k8s.doctor`): writes only in the tenants'
  namespaces, namespace creation only when the scheduler creates them.

A check that cannot run because an earlier one failed (no server, no token) is not shown; the
earlier failure says what to fix first. Exit code 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands.base import Context, Subparsers, add_command
from cli.errors import EXIT_FAILURE, EXIT_OK, AuthenticationError, CliError
from cli.output import short_duration

if TYPE_CHECKING:
    from collections.abc import Sequence

    from k8s.doctor import DoctorCheck

EMBEDDED_KUBECONFIG = Path("var") / "kubeconfig"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    fix: str = ""


def register(subparsers: Subparsers) -> None:
    doctor = add_command(
        subparsers,
        "doctor",
        _doctor,
        "check the server, token, database, scheduler, cluster, RBAC and GPU nodes",
    )
    doctor.add_argument("--kubeconfig", help="kubeconfig path (default: see yushan doctor docs)")
    doctor.add_argument("--context", help="kubeconfig context")
    doctor.add_argument("--in-cluster", action="store_true", help="use the pod's service account")


def _doctor(ctx: Context, args: argparse.Namespace) -> int:
    checks = run_checks(ctx, args)
    ctx.out.emit([asdict(check) for check in checks], lambda _: render(checks))
    return EXIT_OK if all(check.ok for check in checks) else EXIT_FAILURE


def render(checks: list[Check]) -> str:
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        fix = f"  -> fix: {check.fix}" if not check.ok and check.fix else ""
        lines.append(
            f"{'ok' if check.ok else 'FAIL':4}  {check.name:<{width}}  {check.message}{fix}"
        )
    return "\n".join(lines)


def run_checks(ctx: Context, args: argparse.Namespace) -> list[Check]:
    checks = [_server(ctx)]
    if not checks[0].ok:
        return [*checks, *_cluster(args, ctx.environ, namespaces=[], create_namespaces=True)]
    token = _token(ctx)
    checks += [token, _database(ctx)]
    if not token.ok:
        return [*checks, *_cluster(args, ctx.environ, namespaces=[], create_namespaces=True)]
    scheduler, create_namespaces = _scheduler(ctx)
    checks += [scheduler, _flavors(ctx)]
    namespaces = _tenant_namespaces(ctx)
    checks += _cluster(args, ctx.environ, namespaces, create_namespaces=create_namespaces)
    return checks


# -- server-side checks -------------------------------------------------------------------------


def _guard(name: str, fix: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except CliError as error:
        return Check(name, False, error.message, fix)


def _server(ctx: Context) -> Check:
    def check() -> Check:
        ctx.client.health()
        return Check("server", True, f"Yushan answers at {ctx.config.url}")

    return _guard(
        "server",
        "start it (make run), or point the CLI at it: YUSHAN_URL or 'yushan login --url URL'",
        check,
    )


def _token(ctx: Context) -> Check:
    def check() -> Check:
        me = ctx.client.whoami()
        admin = " (platform admin)" if me.get("admin") else ""
        return Check("token", True, f"accepted: {me.get('name')}{admin}")

    fix = "set YUSHAN_TOKEN or run 'yushan login' (make run: the token is in var/admin-token)"
    if not ctx.config.token:
        return Check("token", False, "no API token", fix)
    try:
        return check()
    except AuthenticationError as error:
        return Check("token", False, error.message, fix)
    except CliError as error:
        return Check("token", False, error.message)


def _database(ctx: Context) -> Check:
    def check() -> Check:
        ready, body = ctx.client.readiness()
        if ready:
            return Check("database", True, "answers and has the newest schema")
        detail = str(body.get("detail") or "not ready")
        if "migrated" in detail:
            return Check("database", False, detail, "run 'yushan db upgrade'")
        return Check("database", False, detail, "check YUSHAN_DATABASE_URL and that it is up")

    return _guard("database", "check YUSHAN_DATABASE_URL and that it is up", check)


def _scheduler(ctx: Context) -> tuple[Check, bool]:
    """The heartbeat check, and whether the scheduler creates tenant namespaces."""
    fix = "start it ('yushan scheduler', or 'make run'); if it runs, read its log"
    try:
        beat = ctx.client.scheduler()
    except CliError as error:
        return Check("scheduler", False, error.message, fix), True
    create_namespaces = beat.get("create_tenant_namespaces")
    mode = create_namespaces if isinstance(create_namespaces, bool) else True
    if beat.get("last_cycle_at") is None:
        return Check("scheduler", False, "no scheduler has completed a cycle", fix), mode
    since = f"last cycle {short_duration(float(beat['seconds_since_last_cycle']))} ago"
    if not beat.get("alive"):
        return Check("scheduler", False, f"silent: {since} (leader {beat['leader']})", fix), mode
    return Check("scheduler", True, f"alive: leader {beat['leader']}, {since}"), mode


def _flavors(ctx: Context) -> Check:
    def check() -> Check:
        flavors = [str(f["name"]) for f in ctx.client.list_flavors()]
        if not flavors:
            return Check("flavors", True, "none yet ('yushan flavors create NAME --label K=V')")
        nodes: dict[str, int] = {}
        for node in ctx.client.cluster().get("nodes") or []:
            if node.get("flavor"):
                nodes[str(node["flavor"])] = nodes.get(str(node["flavor"]), 0) + 1
        empty = [name for name in flavors if not nodes.get(name)]
        if empty:
            return Check(
                "flavors",
                False,
                f"no node matches {', '.join(empty)}",
                "label the GPU nodes with the flavor's node labels ('yushan flavors'), "
                "or correct the flavor",
            )
        return Check("flavors", True, ", ".join(f"{name}: {nodes[name]} nodes" for name in flavors))

    return _guard("flavors", "", check)


def _tenant_namespaces(ctx: Context) -> list[str]:
    try:
        return [str(t["namespace"]) for t in ctx.client.list_tenants()]
    except CliError:
        return []


# -- the cluster --------------------------------------------------------------------------------


def kubeconfig_path(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """``--kubeconfig``, else ``$KUBECONFIG``, else ``var/kubeconfig``, else ``~/.kube/config``;
    ``None`` when none of them exists."""
    if flag:
        return flag
    if environ.get("KUBECONFIG"):
        return environ["KUBECONFIG"]
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    for candidate in (EMBEDDED_KUBECONFIG, home / ".kube" / "config"):
        if candidate.exists():
            return str(candidate)
    return None


def _cluster(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    namespaces: list[str],
    *,
    create_namespaces: bool,
) -> list[Check]:
    from k8s.client import ClusterClient
    from k8s.doctor import required_permissions, run_doctor
    from k8s.errors import ClusterError

    in_cluster = args.in_cluster or (
        "KUBERNETES_SERVICE_HOST" in environ and not (args.kubeconfig or environ.get("KUBECONFIG"))
    )
    path = None if in_cluster else kubeconfig_path(args.kubeconfig, environ)
    if path is None and not in_cluster:
        return [
            Check(
                "cluster",
                False,
                "no kubeconfig: none at $KUBECONFIG, var/kubeconfig or ~/.kube/config",
                "pass --kubeconfig, or run doctor where 'make run' writes var/kubeconfig",
            )
        ]
    try:
        client = (
            ClusterClient.in_cluster()
            if in_cluster
            else ClusterClient.from_kubeconfig(path, args.context)
        )
    except ClusterError as error:
        return [Check("cluster", False, str(error), "pass --kubeconfig and --context")]
    with client:
        permissions = required_permissions(
            namespaces or ["default"], create_namespaces=create_namespaces
        )
        report = run_doctor(client, permissions)
    return _summarise(
        report.checks, where=path or "in-cluster service account", namespaces=namespaces
    )


def _summarise(checks: Sequence[DoctorCheck], *, where: str, namespaces: list[str]) -> list[Check]:
    """The cluster checks as doctor lines: one for the connection, one for all of RBAC (or one
    per denied permission), one for the GPU nodes."""
    out: list[Check] = []
    rbac = [c for c in checks if c.name.startswith("rbac: ")]
    for check in checks:
        if check.name == "connection":
            fix = "" if check.ok else "check the kubeconfig's server and credentials"
            out.append(Check("cluster", check.ok, f"{check.message} ({where})", fix))
        elif check.name == "gpu nodes":
            fix = "" if check.ok else "install the NVIDIA device plugin; uncordon the GPU nodes"
            out.append(Check("gpu nodes", check.ok, check.message, fix))
    denied = [c for c in rbac if not c.ok]
    scope = (
        f"writes in {', '.join(namespaces)}" if namespaces else "no tenants yet: writes in default"
    )
    if rbac and not denied:
        out.insert(1, Check("rbac", True, f"{len(rbac)} permissions allowed ({scope})"))
    for position, check in enumerate(denied, start=1):
        out.insert(
            position,
            Check(
                "rbac",
                False,
                f"{check.name.removeprefix('rbac: ')}: {check.message}",
                "grant it to Yushan's identity (the Helm chart's RBAC; rbac.tenantNamespaces "
                "must list every tenant's namespace)",
            ),
        )
    return out
