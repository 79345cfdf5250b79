"""The cluster adapter the scheduler loop calls: dispatch, delete, list, observe, reconcile, logs.

Crash safety rests on three properties rather than on any local state:

* **Deterministic names.** Worker ``i`` of job ``j`` is always pod ``j-i``. Creating it twice is
  impossible; a create that meets ``AlreadyExists`` reads the existing pod and accepts it when
  its labels say it is this job's pod of this attempt. A retried POST whose first try did reach
  the server therefore converges instead of duplicating.
* **Labels are the index.** Every object carries ``app.kubernetes.io/managed-by=yushan`` and
  ``yushan.io/job``/``attempt``, so :meth:`ClusterClient.reconcile` can rebuild the whole picture
  from one list call: adopt what the database still wants, create what is missing, delete the
  rest. A scheduler killed between any two API calls is repaired by its successor's reconcile.
* **The database is the source of truth.** The adapter never decides that a job exists; it is
  handed the desired set.

Throughput: creates within a gang and across jobs run concurrently on a small thread pool
(``ClientOptions.parallelism``) sharing one connection pool; the HTTP work releases the GIL.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from k8s import manifests as mf
from k8s.errors import (
    ClusterAlreadyExists,
    ClusterConflict,
    ClusterError,
    ClusterForbidden,
    ClusterNotFound,
    ClusterUnreachable,
    OwnershipConflict,
    RetryPolicy,
    translate_error,
)
from k8s.observe import gang_observations, installation_of, is_managed, node_infos
from k8s.transport import JsonObject, Query, Transport, TransportOptions, iter_lines
from k8s.types import (
    GangObservation,
    NodeInfo,
    ReconcileReport,
    WorkerObservation,
    WorkloadSpec,
)

CORE = "/api/v1"


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Tuning knobs; the defaults suit both the embedded cluster and a real one."""

    transport: TransportOptions = field(default_factory=TransportOptions)
    parallelism: int = 16
    create_namespaces: bool = True
    field_manager: str = "yushan"
    installation: str | None = None
    """This installation's identity (:mod:`store.installation`): stamped on every pod and
    Service created; objects stamped with another identity are never adopted or deleted."""


class StaleAttemptPresent(ClusterError):
    """A pod of an earlier attempt still holds the name; it is being deleted, try again later."""


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def _attempt(obj: Mapping[str, Any]) -> int:
    try:
        return int(mf.label(obj, mf.LABEL_ATTEMPT) or 0)
    except ValueError:
        return -1


def _is_terminating(obj: Mapping[str, Any]) -> bool:
    return (obj.get("metadata") or {}).get("deletionTimestamp") is not None


def _has_finished(obj: Mapping[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return _namespace(obj), _name(obj)


def _collection(kind: str, namespace: str) -> str:
    return f"{CORE}/namespaces/{quote(namespace)}/{kind}"


def _throttle_refresh_hook(configuration: Any, interval: float = 1.0) -> None:
    """Run the kubeconfig loader's per-request credential hook at most once per ``interval``.

    The hook re-applies the whole kubeconfig (re-reading proxy settings from the environment)
    before every request, which costs more client CPU than building the pod; it only needs to
    notice an expired token (exec/OIDC plugins), which a one-second delay does not change.
    """
    hook = configuration.refresh_api_key_hook
    if hook is None:
        return
    lock = threading.Lock()
    last_run = [-interval]

    def throttled(config: Any) -> None:
        with lock:
            now = time.monotonic()
            if now - last_run[0] < interval:
                return
            last_run[0] = now
        hook(config)

    configuration.refresh_api_key_hook = throttled


class _Breaker:
    """Remembers the first "cluster unreachable" error of a batch so the rest fail fast."""

    def __init__(self) -> None:
        self.tripped: ClusterError | None = None

    def record(self, error: ClusterError) -> None:
        if isinstance(error, ClusterUnreachable) and self.tripped is None:
            self.tripped = error


def _unreachable(errors: Mapping[str, ClusterError]) -> ClusterError | None:
    return next((e for e in errors.values() if isinstance(e, ClusterUnreachable)), None)


class ClusterClient:
    """One connection to one cluster. Thread-safe; share a single instance."""

    def __init__(self, api_client: Any, options: ClientOptions | None = None) -> None:
        self.options = options or ClientOptions()
        self.api_client = api_client
        self.transport = Transport(api_client, self.options.transport)
        self._known_namespaces: set[str] = set()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | os.PathLike[str] | None = None,
        context: str | None = None,
        options: ClientOptions | None = None,
    ) -> ClusterClient:
        """Connect through a kubeconfig: ``path``, else ``$KUBECONFIG``, else ``~/.kube/config``."""
        options = options or ClientOptions()
        configuration = cls._configuration(options)
        config_file = path or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config"
        try:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(config_file),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (k8s_config.ConfigException, OSError) as exc:
            raise ClusterError(f"cannot load kubeconfig {config_file}: {exc}") from exc
        _throttle_refresh_hook(configuration)
        return cls(k8s_client.ApiClient(configuration), options)

    @classmethod
    def in_cluster(cls, options: ClientOptions | None = None) -> ClusterClient:
        """Connect with the pod's service account (when Yushan itself runs in the cluster)."""
        options = options or ClientOptions()
        configuration = cls._configuration(options)
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except k8s_config.ConfigException as exc:
            raise ClusterError(f"not running inside a cluster: {exc}") from exc
        return cls(k8s_client.ApiClient(configuration), options)

    @classmethod
    def from_api_client(
        cls, api_client: Any, options: ClientOptions | None = None
    ) -> ClusterClient:
        return cls(api_client, options)

    @staticmethod
    def _configuration(options: ClientOptions) -> Any:
        configuration = k8s_client.Configuration()
        configuration.connection_pool_maxsize = max(options.parallelism, 4) + 4
        configuration.retries = False  # retries are ours: bounded, jittered, Retry-After aware
        return configuration

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        close = getattr(self.api_client, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> ClusterClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- generic object access ------------------------------------------------------------

    def list_objects(
        self, path: str, *, label_selector: str | None = None, retry: RetryPolicy | None = None
    ) -> tuple[list[JsonObject], str]:
        """Items and the list's resourceVersion (the point a watch resumes from)."""
        query = {"labelSelector": label_selector}
        answer = self.transport.request("GET", path, query=query, retry=retry)
        version = str((answer.get("metadata") or {}).get("resourceVersion") or "")
        return list(answer.get("items") or []), version

    def _get(self, path: str) -> JsonObject:
        return self.transport.request("GET", path)

    def _delete(self, path: str, grace_seconds: int | None = None) -> bool:
        """Delete one object; ``False`` when it was already gone."""
        body: JsonObject = {"apiVersion": "v1", "kind": "DeleteOptions"}
        body["propagationPolicy"] = "Background"
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        try:
            self.transport.request("DELETE", path, body=body)
        except ClusterNotFound:
            return False
        return True

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.options.parallelism, thread_name_prefix="yushan-k8s"
                )
            return self._pool

    # -- namespaces -----------------------------------------------------------------------

    def ensure_namespace(self, name: str, tenant: str | None = None) -> None:
        """Create the namespace if missing (when allowed); a no-op once seen to exist."""
        if name in self._known_namespaces:
            return
        if self.options.create_namespaces:
            manifest = self._stamped(mf.namespace_manifest(name, tenant))
            try:
                self.transport.request("POST", f"{CORE}/namespaces", body=manifest)
            except ClusterAlreadyExists:
                pass
            except ClusterForbidden:
                self._require_namespace(name)
        else:
            self._require_namespace(name)
        self._known_namespaces.add(name)

    def _require_namespace(self, name: str) -> None:
        try:
            self._get(f"{CORE}/namespaces/{quote(name)}")
        except ClusterForbidden:
            return  # cannot even read namespaces: let the pod create tell whether it exists

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self, spec: WorkloadSpec) -> None:
        """Create the gang's Service (if several workers) and pods; safe to repeat.

        Raises the first :class:`ClusterError` met after retries; whatever was created stays
        and a later ``dispatch`` or ``reconcile`` completes it.
        """
        errors = self.dispatch_many([spec])
        if spec.job_id in errors:
            raise errors[spec.job_id]

    def dispatch_many(self, specs: Sequence[WorkloadSpec]) -> dict[str, ClusterError]:
        """Dispatch several jobs concurrently; returns the error of each job that failed.

        Once the cluster proves unreachable, the rest of the batch fails fast with that error
        instead of each job spending the whole retry deadline on its own.
        """
        errors: dict[str, ClusterError] = {}
        namespace_errors: dict[str, ClusterError] = {}
        ready: list[WorkloadSpec] = []
        for spec in specs:
            error = namespace_errors.get(spec.namespace) or _unreachable(namespace_errors)
            if error is None:
                try:
                    self.ensure_namespace(spec.namespace, spec.tenant)
                except ClusterError as exc:
                    error = namespace_errors[spec.namespace] = exc
            if error is None:
                ready.append(spec)
            else:
                errors[spec.job_id] = error
        tasks = [(spec.job_id, m) for spec in ready for m in mf.gang_manifests(spec)]
        for job_id, error in self._create_all(tasks):
            errors.setdefault(job_id, error)
        for spec in specs:
            if isinstance(errors.get(spec.job_id), ClusterNotFound):
                self._known_namespaces.discard(spec.namespace)  # deleted behind our back?
        return errors

    def _create_all(
        self, tasks: Sequence[tuple[str, JsonObject]]
    ) -> Iterator[tuple[str, ClusterError]]:
        """Create every (job id, manifest); yields the failures."""
        breaker = _Breaker()
        if len(tasks) == 1:
            job_id, manifest = tasks[0]
            error = self._create_quietly(manifest, breaker)
            if error is not None:
                yield job_id, error
            return
        pool = self._executor()
        futures: list[tuple[str, Future[ClusterError | None]]] = [
            (job_id, pool.submit(self._create_quietly, manifest, breaker))
            for job_id, manifest in tasks
        ]
        for job_id, future in futures:
            error = future.result()
            if error is not None:
                yield job_id, error

    def _create_quietly(self, manifest: JsonObject, breaker: _Breaker) -> ClusterError | None:
        if breaker.tripped is not None:
            return breaker.tripped
        try:
            self.create_owned(manifest)
        except ClusterError as exc:
            breaker.record(exc)
            return exc
        except Exception as exc:  # a library error slipping through must not kill the batch
            return translate_error(exc)
        return None

    def create_owned(self, manifest: JsonObject) -> bool:
        """Create a Service or Pod manifest; ``False`` if our identical object already existed.

        An existing object with the same name is accepted only if it is Yushan's, for the
        same job and attempt. A pod of an earlier attempt is deleted and reported as
        :class:`StaleAttemptPresent`; anything else is an :class:`OwnershipConflict`.
        """
        manifest = self._stamped(manifest)
        kind = "pods" if manifest["kind"] == "Pod" else "services"
        collection = _collection(kind, _namespace(manifest))
        query = {"fieldManager": self.options.field_manager}
        for _ in range(3):
            try:
                self.transport.request("POST", collection, query=query, body=manifest)
                return True
            except ClusterAlreadyExists:
                pass
            try:
                existing = self._get(f"{collection}/{quote(_name(manifest))}")
            except ClusterNotFound:
                continue  # deleted in between: create again
            self._accept_existing(existing, manifest, f"{collection}/{quote(_name(manifest))}")
            return False
        raise ClusterConflict(f"{kind} {_name(manifest)} keeps appearing and disappearing")

    def _accept_existing(self, existing: JsonObject, wanted: JsonObject, path: str) -> None:
        name = _name(wanted)
        job = mf.label(wanted, mf.LABEL_JOB)
        if mf.label(existing, mf.LABEL_MANAGED_BY) != mf.MANAGED_BY:
            raise OwnershipConflict(f"{name} exists and was not created by Yushan")
        if not self._ours(existing):
            raise OwnershipConflict(
                f"{name} belongs to another Yushan installation ({installation_of(existing)})"
            )
        if mf.label(existing, mf.LABEL_JOB) != job:
            raise OwnershipConflict(f"{name} belongs to job {mf.label(existing, mf.LABEL_JOB)}")
        if wanted["kind"] != "Pod" or _attempt(existing) == _attempt(wanted):
            return
        if _attempt(existing) > _attempt(wanted):
            raise OwnershipConflict(f"{name} belongs to a newer attempt {_attempt(existing)}")
        if not _is_terminating(existing):
            self._delete(path)
        raise StaleAttemptPresent(
            f"{name} of attempt {_attempt(existing)} is still terminating", reason="StalePod"
        )

    # -- deletion -------------------------------------------------------------------------

    def delete_job(
        self,
        job_id: str,
        namespace: str,
        grace_seconds: int = 30,
        *,
        keep_finished: bool = False,
        known_pods: Sequence[WorkerObservation] | None = None,
    ) -> int:
        """Delete the job's pods (all attempts) and Service; returns pods asked to go.

        With ``keep_finished``, pods that already ended (Succeeded or Failed) stay, so that the
        logs of a failed worker remain readable while the rest of its gang is stopped.
        Deletion is asynchronous: GPUs count as free only once :meth:`job_pods_gone` (or the
        watcher's observation) shows no pod left. ``known_pods`` (the caller's cached view,
        e.g. a :class:`~k8s.watcher.ClusterWatcher` observation) saves the LIST of the job's
        pods; a pod it misses is deleted on a later call, once the cache shows it.
        """
        if known_pods is None:
            pods, _ = self.list_objects(
                _collection("pods", namespace), label_selector=mf.job_selector(job_id)
            )
            alive = [
                _name(p)
                for p in pods
                if self._ours(p)
                and not _is_terminating(p)
                and not (keep_finished and _has_finished(p))
            ]
        else:
            alive = [
                w.name
                for w in known_pods
                if not w.terminating and not (keep_finished and w.phase in ("Succeeded", "Failed"))
            ]
        paths = [f"{_collection('pods', namespace)}/{quote(name)}" for name in alive]
        self._run_all([partial(self._delete, path, grace_seconds) for path in paths])
        self._delete(f"{_collection('services', namespace)}/{quote(mf.service_name(job_id))}")
        return len(alive)

    def job_pods_gone(self, job_id: str, namespace: str) -> bool:
        pods, _ = self.list_objects(
            _collection("pods", namespace), label_selector=mf.job_selector(job_id)
        )
        return not [p for p in pods if self._ours(p)]

    def _run_all(self, calls: Sequence[Callable[[], object]]) -> None:
        """Run calls concurrently and raise the first error after all have finished."""
        if len(calls) <= 1:
            for call in calls:
                call()
            return
        futures = [self._executor().submit(call) for call in calls]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

    # -- reading the cluster --------------------------------------------------------------

    def list_nodes(self) -> list[NodeInfo]:
        """All nodes with capacity, readiness and the usage of pods Yushan did not create."""
        return self._inventory()[0]

    def snapshot(self) -> tuple[list[NodeInfo], dict[str, GangObservation]]:
        """Nodes and every Yushan gang from one LIST of nodes and one of pods.

        The same view :meth:`k8s.watcher.ClusterWatcher.snapshot` keeps up to date without
        listing; for one-shot callers (tools, tests) that run no watcher.
        """
        nodes, pods = self._inventory()
        installation = self.options.installation
        return nodes, gang_observations(pods, {n.name: n for n in nodes}, installation)

    def _inventory(self) -> tuple[list[NodeInfo], list[JsonObject]]:
        nodes, _ = self.list_objects(f"{CORE}/nodes")
        pods, _ = self.list_objects(f"{CORE}/pods")
        return node_infos(nodes, pods, self.options.installation), pods

    def managed_pods(self) -> list[JsonObject]:
        """This installation's pods (and unstamped ones, which predate identities)."""
        return [p for p in self._all_managed_pods() if self._ours(p)]

    def _all_managed_pods(self) -> list[JsonObject]:
        pods, _ = self.list_objects(f"{CORE}/pods", label_selector=mf.MANAGED_SELECTOR)
        return pods

    def other_installations(self) -> dict[str, int]:
        """Identities other than ours stamped on Yushan pods in the cluster, with pod counts."""
        found: dict[str, int] = {}
        for pod in self._all_managed_pods():
            stamp = installation_of(pod)
            if stamp is not None and stamp != self.options.installation:
                found[stamp] = found.get(stamp, 0) + 1
        return found

    def _ours(self, obj: Mapping[str, Any]) -> bool:
        return is_managed(obj, self.options.installation)

    def _stamped(self, manifest: JsonObject) -> JsonObject:
        if self.options.installation is None:
            return manifest
        metadata = dict(manifest.get("metadata") or {})
        labels = dict(metadata.get("labels") or {})
        labels[mf.LABEL_INSTALLATION] = self.options.installation
        return {**manifest, "metadata": {**metadata, "labels": labels}}

    def read_logs(
        self,
        namespace: str,
        job_id: str,
        worker: int,
        follow: bool = False,
        tail_lines: int | None = None,
    ) -> Iterator[str]:
        """The worker's log lines (without newlines); with ``follow`` until the pod ends.

        The request is made on the first ``next()``; the caller should close the iterator (or
        exhaust it) to release the connection. A followed stream has no idle timeout: a job may
        print nothing for hours.
        """
        path = f"{_collection('pods', namespace)}/{quote(mf.pod_name(job_id, worker))}/log"
        query: Query = {"container": mf.CONTAINER_NAME, "follow": follow, "tailLines": tail_lines}
        response = self.transport.open_stream(
            path, query=query, accept="text/plain, */*", idle_timeout=None if follow else "default"
        )
        try:
            for line in iter_lines(response, keep_blank=True):
                yield line.decode("utf-8", "replace").rstrip("\r")
        finally:
            response.release_conn()

    # -- crash recovery -------------------------------------------------------------------

    def reconcile(
        self,
        desired: Mapping[str, WorkloadSpec],
        namespaces: Collection[str] | None = None,
        *,
        keep_finished: bool = False,
    ) -> ReconcileReport:
        """Make the cluster match the desired (admitted or running) jobs.

        Adopts Yushan pods that belong to a desired job's current attempt, deletes every other
        Yushan pod and Service (orphans and stale attempts), and creates what desired jobs lack.
        A missing pod whose name is still held by a terminating one is reported as waiting.
        ``namespaces`` limits which existing objects are considered (default: all). With
        ``keep_finished``, pods that already ended and belong to no desired job stay (they hold
        no resources, and their logs are still wanted).
        """
        services, _ = self.list_objects(f"{CORE}/services", label_selector=mf.MANAGED_SELECTOR)
        services = [s for s in services if self._ours(s)]
        pods = self.managed_pods()
        if namespaces is not None:
            pods = [p for p in pods if _namespace(p) in namespaces]
            services = [s for s in services if _namespace(s) in namespaces]
        adopted, doomed_pods = self._sort_pods(pods, desired, keep_finished)
        doomed = [("pods", p) for p in doomed_pods]
        doomed += [("services", s) for s in services if not self._service_wanted(s, desired)]
        deleted, errors = self._delete_objects(doomed)

        present = {_key(p) for p in pods} | {_key(s) for s in services}
        missing: list[tuple[str, JsonObject]] = []
        waiting: list[str] = []
        for spec in desired.values():
            for manifest in mf.gang_manifests(spec):
                key = _key(manifest)
                if key in adopted or (manifest["kind"] == "Service" and key in present):
                    continue
                if key in present:
                    waiting.append(_name(manifest))
                else:
                    missing.append((spec.job_id, manifest))
        created = self._create_missing(missing, desired, errors)
        return ReconcileReport(
            adopted=tuple(sorted(name for _, name in adopted)),
            created=tuple(sorted(created)),
            deleted=tuple(sorted(deleted)),
            waiting=tuple(sorted(waiting)),
            errors=errors,
        )

    def _create_missing(
        self,
        missing: Sequence[tuple[str, JsonObject]],
        desired: Mapping[str, WorkloadSpec],
        errors: dict[str, str],
    ) -> list[str]:
        for job_id in dict.fromkeys(job_id for job_id, _ in missing):
            spec = desired[job_id]
            try:
                self.ensure_namespace(spec.namespace, spec.tenant)
            except ClusterError as exc:
                errors[job_id] = str(exc)
        tasks = [(job_id, m) for job_id, m in missing if job_id not in errors]
        for job_id, error in self._create_all(tasks):
            errors.setdefault(job_id, str(error))
        return [_name(m) for job_id, m in tasks if job_id not in errors]

    @staticmethod
    def _sort_pods(
        pods: Iterable[JsonObject], desired: Mapping[str, WorkloadSpec], keep_finished: bool
    ) -> tuple[set[tuple[str, str]], list[JsonObject]]:
        """Split Yushan pods into adopted keys and pods to delete (terminating ones are left)."""
        adopted: set[tuple[str, str]] = set()
        doomed: list[JsonObject] = []
        for pod in pods:
            spec = desired.get(mf.label(pod, mf.LABEL_JOB) or "")
            if (
                spec is not None
                and _namespace(pod) == spec.namespace
                and _attempt(pod) == spec.attempt
            ):
                adopted.add(_key(pod))
            elif _is_terminating(pod) or (keep_finished and spec is None and _has_finished(pod)):
                continue
            else:
                doomed.append(pod)
        return adopted, doomed

    @staticmethod
    def _service_wanted(service: JsonObject, desired: Mapping[str, WorkloadSpec]) -> bool:
        spec = desired.get(mf.label(service, mf.LABEL_JOB) or "")
        return spec is not None and spec.workers > 1 and _namespace(service) == spec.namespace

    def _delete_objects(
        self, objects: Sequence[tuple[str, JsonObject]]
    ) -> tuple[list[str], dict[str, str]]:
        deleted: list[str] = []
        errors: dict[str, str] = {}
        for kind, obj in objects:
            path = f"{_collection(kind, _namespace(obj))}/{quote(_name(obj))}"
            try:
                if self._delete(path):
                    deleted.append(_name(obj))
            except ClusterError as exc:
                errors[_name(obj)] = str(exc)
        return deleted, errors

    # -- cluster facts for doctor ---------------------------------------------------------

    def server_version(self) -> str:
        answer = self._get("/version")
        return str(answer.get("gitVersion") or answer.get("major", "?"))

    def can_i(
        self,
        verb: str,
        resource: str,
        *,
        group: str = "",
        subresource: str = "",
        namespace: str | None = None,
    ) -> tuple[bool, str]:
        """SelfSubjectAccessReview: whether our credentials may ``verb`` the resource."""
        review = mf.access_review_manifest(
            verb, resource, group=group, subresource=subresource, namespace=namespace or ""
        )
        answer = self.transport.request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review
        )
        status = answer.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or "")
