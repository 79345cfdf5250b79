"""Request handling of the embedded API server, independent of the HTTP plumbing.

:class:`SimApi` turns an :class:`ApiRequest` (method, path, query, body) into a
:class:`JsonResponse`, :class:`TextResponse` or :class:`StreamResponse`. It implements the
Core v1 subset Yushan uses (namespaces, nodes, pods with ``binding``/``log``/``status``,
services, events), ``coordination.k8s.io/v1`` Leases and ``authorization.k8s.io/v1``
SelfSubjectAccessReviews. Watches are served by :mod:`k8s.sim.watching`.

Verbs follow the API server's naming: ``get``, ``list``, ``watch``, ``create``, ``update``
(PUT), ``patch``, ``delete`` and ``deletecollection``. Fidelity notes:

* ``pods/binding`` and the ``bindings`` resource answer a ``Status`` (201), as the real server
  does; the official client then fails to build a ``V1Binding`` from it, so callers pass
  ``_preload_content=False``.
* Status is written through ``pods/status`` and ``nodes/status`` only; ``update`` and
  ``patch`` of the main resource keep the stored status, like the real server.
* Pod deletion is graceful (``deletionTimestamp``, then removal by the simulated kubelet) only
  for Running pods with a grace period above zero; other pods go at once.
* Patches: JSON merge, strategic merge (applied as a JSON merge, which is exact for the scalar
  fields and maps Yushan and kubectl patch) and RFC 6902 JSON patch. ``limit``/``continue``
  paging is not implemented (lists are always complete); ``dryRun`` requests are refused with
  400 rather than applied.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from k8s.sim import podstatus
from k8s.sim.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
)
from k8s.sim.faults import FaultInjector
from k8s.sim.kubelet import PodLogs
from k8s.sim.objects import TERMINAL_PHASES, json_patch, merge_patch, timestamp
from k8s.sim.rbac import RbacAuthorizer
from k8s.sim.resources import (
    SERVER_VERSION,
    Resource,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    lookup,
    require,
)
from k8s.sim.selectors import parse_selection
from k8s.sim.store import Key, Obj, ObjectStore
from k8s.sim.tables import table, wants_table
from k8s.sim.watching import WatchStreams, parse_revision

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_MERGE_PATCHES = frozenset(
    {"application/merge-patch+json", "application/strategic-merge-patch+json"}
)
_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_POD_RESOURCE = require("", "pods")
_STATUS_SUBRESOURCES = frozenset({"pods", "nodes"})


@dataclass(frozen=True, slots=True)
class ApiRequest:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class JsonResponse:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextResponse:
    status: int
    text: str


@dataclass(frozen=True, slots=True)
class StreamResponse:
    """A chunked response; each yielded string is sent as one chunk as soon as it exists."""

    content_type: str
    chunks: Iterator[str]


Response = JsonResponse | TextResponse | StreamResponse


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a resource request points: resource, namespace, name and subresource."""

    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def key(self) -> Key:
        assert self.name is not None
        return (self.namespace or "", self.name)

    @property
    def label(self) -> str:
        plural = self.resource.plural
        return f"{plural}/{self.subresource}" if self.subresource else plural


def _success(code: int = 200, **details: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": code,
    }
    if details:
        status["details"] = details
    return status


class SimApi:
    """All API semantics of the embedded cluster over one :class:`ObjectStore`."""

    def __init__(
        self,
        store: ObjectStore,
        logs: PodLogs,
        faults: FaultInjector,
        *,
        bookmark_interval: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        authorizer: RbacAuthorizer | None = None,
    ) -> None:
        self._authorizer = authorizer
        """RBAC enforcement (:mod:`k8s.sim.rbac`); ``None`` allows everything."""
        self._store = store
        self._logs = logs
        self._faults = faults
        self._watches = WatchStreams(store, faults, bookmark_interval=bookmark_interval)
        self._sleep = sleep
        self._counts: Counter[tuple[str, str]] = Counter()
        self._counts_lock = threading.Lock()
        self._service_ips = iter(range(1, 1 << 20))
        self._service_ips_lock = threading.Lock()
        for namespace in _SYSTEM_NAMESPACES:
            self._store.create("namespaces", _namespace_object(namespace))

    def stop(self) -> None:
        """End every open watch and log stream."""
        self._watches.stop()

    def request_count(self, verb: str | None = None, resource: str | None = None) -> int:
        with self._counts_lock:
            return sum(
                count
                for (counted_verb, counted_resource), count in self._counts.items()
                if verb in (None, counted_verb) and resource in (None, counted_resource)
            )

    def handle(self, request: ApiRequest) -> Response:
        try:
            discovery = self._discovery(request)
            if discovery is not None:
                return discovery
            target = self._parse_target(request.path)
            verb = self._verb(request, target)
            with self._counts_lock:
                self._counts[(verb, target.label)] += 1
            self._authorize(verb, target)
            delay = self._faults.take_delay(verb, target.label)
            if delay:
                self._sleep(delay)
            fault = self._faults.take_failure(verb, target.label)
            if fault is not None:
                raise fault
            if request.query.get("dryRun"):
                raise BadRequest("dryRun is not supported by the embedded cluster")
            return self._dispatch(verb, target, request)
        except ApiError as error:
            headers = {}
            if error.retry_after is not None:
                headers["Retry-After"] = str(max(1, round(error.retry_after)))
            return JsonResponse(error.code, error.status(), headers)

    def _authorize(self, verb: str, target: _Target) -> None:
        if self._authorizer is None or target.resource.plural == "selfsubjectaccessreviews":
            return
        group = target.resource.group
        if not self._authorizer.allows(verb, group, target.label, target.namespace):
            where = f' in the namespace "{target.namespace}"' if target.namespace else ""
            raise Forbidden(
                f'cannot {verb} resource "{target.label}" in API group "{group}"{where}'
            )

    # -- routing ----------------------------------------------------------------------------

    def _discovery(self, request: ApiRequest) -> Response | None:
        path = request.path.rstrip("/") or "/"
        if request.method != "GET":
            return None
        documents: dict[str, Callable[[], Mapping[str, Any] | None]] = {
            "/version": lambda: SERVER_VERSION,
            "/api": api_versions,
            "/apis": api_group_list,
            "/api/v1": lambda: api_resource_list("", "v1"),
        }
        if path in ("/healthz", "/readyz", "/livez"):
            return TextResponse(200, "ok")
        if path in documents:
            document = documents[path]()
        elif match := re.fullmatch(r"/apis/([^/]+)", path):
            document = api_group(match.group(1))
        elif match := re.fullmatch(r"/apis/([^/]+)/([^/]+)", path):
            document = api_resource_list(match.group(1), match.group(2))
        else:
            return None
        if document is None:
            raise NotFound("the server could not find the requested resource")
        return JsonResponse(200, document)

    def _parse_target(self, path: str) -> _Target:
        parts = [part for part in path.split("/") if part]
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, rest = parts[1], parts[3:]
        else:
            raise NotFound("the server could not find the requested resource")
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and lookup(group, rest[2]) is not None:
            namespace, rest = rest[1], rest[2:]
        resource = lookup(group, rest[0]) if rest else None
        if resource is None or len(rest) > 3:
            raise NotFound("the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if namespace is not None and not resource.namespaced:
            raise NotFound("the server could not find the requested resource")
        if resource.namespaced and namespace is None and name is not None:
            raise NotFound("the server could not find the requested resource")
        return _Target(resource, namespace, name, subresource)

    def _verb(self, request: ApiRequest, target: _Target) -> str:
        method = request.method
        if method == "GET":
            if target.name is not None:
                return "get"
            return "watch" if request.query.get("watch") in ("true", "1") else "list"
        verbs = {"POST": "create", "PUT": "update", "PATCH": "patch"}
        if method in verbs:
            return verbs[method]
        if method == "DELETE":
            return "delete" if target.name is not None else "deletecollection"
        raise MethodNotAllowed(f"method {method} is not supported")

    def _dispatch(self, verb: str, target: _Target, request: ApiRequest) -> Response:
        if target.subresource is not None:
            return self._subresource(verb, target, request)
        plural = target.resource.plural
        if (plural, verb) == ("selfsubjectaccessreviews", "create"):
            return self._access_review(request)
        if (plural, verb) == ("bindings", "create"):
            return self._binding_resource(target, request)
        if verb not in target.resource.verbs:
            raise MethodNotAllowed(f"{verb} is not supported on {target.resource.display}")
        handlers: dict[str, Callable[[_Target, ApiRequest], Response]] = {
            "get": self._get_response,
            "list": self._list_response,
            "watch": self._watch_response,
            "create": lambda t, r: JsonResponse(201, self._create(t, _json_body(r))),
            "update": lambda t, r: JsonResponse(200, self._update(t, _json_body(r))),
            "patch": lambda t, r: JsonResponse(200, self._patch(t, r)),
            "delete": lambda t, r: JsonResponse(200, self._delete(t, _delete_options(r))),
            "deletecollection": lambda t, r: JsonResponse(200, self._delete_collection(t, r)),
        }
        return handlers[verb](target, request)

    def _get_response(self, target: _Target, request: ApiRequest) -> Response:
        obj = self._get(target)
        if wants_table(request.headers.get("accept", "")):
            obj = table(target.resource, [obj], int(obj["metadata"]["resourceVersion"]))
        return JsonResponse(200, obj)

    def _list_response(self, target: _Target, request: ApiRequest) -> Response:
        listed = self._list(target, request.query)
        if wants_table(request.headers.get("accept", "")):
            revision = int(listed["metadata"]["resourceVersion"])
            listed = table(target.resource, listed["items"], revision)
        return JsonResponse(200, listed)

    def _watch_response(self, target: _Target, request: ApiRequest) -> Response:
        as_table = wants_table(request.headers.get("accept", ""))
        events = self._watches.open(
            target.resource, target.namespace, request.query, as_table=as_table
        )
        return StreamResponse("application/json", events)

    def _binding_resource(self, target: _Target, request: ApiRequest) -> Response:
        """``POST namespaces/{ns}/bindings``: the older form of ``pods/{name}/binding``."""
        binding = _json_body(request)
        pod = (binding.get("metadata") or {}).get("name")
        if not pod:
            raise Invalid("Binding is invalid: metadata.name: Required value")
        pods = _Target(_POD_RESOURCE, target.namespace, str(pod), "binding")
        return JsonResponse(201, self._bind(pods, binding))

    def _subresource(self, verb: str, target: _Target, request: ApiRequest) -> Response:
        route = (target.resource.plural, target.subresource, verb)
        if route == ("pods", "binding", "create"):
            return JsonResponse(201, self._bind(target, _json_body(request)))
        if route == ("pods", "log", "get"):
            return self._pod_log(target, request.query)
        if route in (("pods", "status", "get"), ("nodes", "status", "get")):
            return JsonResponse(200, self._get(target))
        if route in (("pods", "status", "patch"), ("nodes", "status", "patch")):
            return JsonResponse(200, self._patch(target, request, status_only=True))
        raise NotFound("the server could not find the requested resource")

    # -- generic verbs ----------------------------------------------------------------------

    def _get(self, target: _Target) -> Obj:
        return self._store.get(target.resource.plural, target.key)

    def _list(self, target: _Target, query: Mapping[str, str]) -> Obj:
        selected = parse_selection(query)
        if query.get("resourceVersionMatch") == "Exact" and query.get("resourceVersion"):
            self._store.changes_since(target.resource.plural, parse_revision(query))
        items, revision = self._store.list_objects(target.resource.plural, target.namespace)
        return {
            "kind": target.resource.list_kind,
            "apiVersion": target.resource.api_version,
            "metadata": {"resourceVersion": str(revision)},
            "items": [item for item in items if selected(item)],
        }

    def _create(self, target: _Target, body: Obj) -> Obj:
        resource = target.resource
        metadata = body.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise BadRequest("metadata must be an object")
        if target.namespace is not None:
            if metadata.get("namespace") not in (None, "", target.namespace):
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            metadata["namespace"] = target.namespace
            self._store.get("namespaces", ("", target.namespace))
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = f"{metadata['generateName']}{uuid.uuid4().hex[:5]}"
        name = metadata.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 253:
            raise Invalid(
                f'{resource.kind} "{name}" is invalid: metadata.name: Invalid value',
                kind=resource.kind,
                name=str(name),
            )
        body["apiVersion"] = resource.api_version
        body["kind"] = resource.kind
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
            metadata.pop(server_field, None)
        prepare = {
            "pods": _prepare_pod,
            "namespaces": _prepare_namespace,
            "services": self._prepare_service,
        }.get(resource.plural)
        if prepare is not None:
            prepare(body)
        return self._store.create(resource.plural, body)

    def _update(self, target: _Target, body: Obj) -> Obj:
        metadata = body.get("metadata") or {}
        if metadata.get("name") != target.name:
            raise BadRequest("the name of the object does not match the name on the URL")
        expected = metadata.get("resourceVersion")

        def replace(current: Obj) -> Obj:
            replacement = dict(body)
            replacement["apiVersion"] = target.resource.api_version
            replacement["kind"] = target.resource.kind
            replacement["metadata"] = {**metadata}
            for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                if server_field in current["metadata"]:
                    replacement["metadata"][server_field] = current["metadata"][server_field]
            return _split_status(target.resource, current, replacement, status_only=False)

        return self._store.update(target.resource.plural, target.key, replace, expected)

    def _patch(self, target: _Target, request: ApiRequest, *, status_only: bool = False) -> Obj:
        """Merge, strategic merge (treated as merge) and JSON patches; ``pods/status`` and
        ``nodes/status`` patches change nothing but ``status``."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        try:
            patch = json.loads(request.body or b"null")
        except json.JSONDecodeError as error:
            raise BadRequest(f"invalid JSON patch body: {error}") from error
        if content_type in _MERGE_PATCHES and isinstance(patch, dict):
            expected = (patch.get("metadata") or {}).get("resourceVersion")

            def apply(current: Obj) -> Obj:
                patched: Obj = merge_patch(current, patch)
                return patched
        elif content_type == "application/json-patch+json":
            expected = None

            def apply(current: Obj) -> Obj:
                patched: Obj = json_patch(current, patch)
                return patched
        else:
            raise UnsupportedMediaType(
                f"the body of the request was in an unknown format: {content_type or 'none'}"
            )

        def mutate(current: Obj) -> Obj:
            return _split_status(target.resource, current, apply(current), status_only)

        return self._store.update(target.resource.plural, target.key, mutate, expected)

    def _delete(self, target: _Target, options: Mapping[str, Any]) -> Obj:
        plural = target.resource.plural
        current = self._store.get(plural, target.key)
        _check_preconditions(current, options)
        if plural == "pods":
            return self._delete_pod(target.key, current, options)
        if plural == "namespaces":
            return self._delete_namespace(target.key)
        deleted = self._store.delete(plural, target.key)
        if plural in ("leases", "events"):
            return _success(name=target.name, kind=plural, uid=deleted["metadata"]["uid"])
        return deleted

    def _delete_collection(self, target: _Target, request: ApiRequest) -> Obj:
        options = _delete_options(request)
        selected = parse_selection(request.query)
        items, _ = self._store.list_objects(target.resource.plural, target.namespace)
        for item in items:
            if selected(item):
                key = (item["metadata"].get("namespace") or "", item["metadata"]["name"])
                try:
                    self._delete(_Target(target.resource, key[0] or None, key[1], None), options)
                except NotFound:
                    continue
        return _success()

    # -- resource specifics -----------------------------------------------------------------

    def _delete_pod(self, key: Key, pod: Obj, options: Mapping[str, Any]) -> Obj:
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        grace = int(grace)
        if grace <= 0 or pod["status"].get("phase") != "Running":
            return self._store.delete("pods", key)
        if pod["metadata"].get("deletionTimestamp"):
            return pod

        def mark(current: Obj) -> Obj:
            current["metadata"]["deletionTimestamp"] = timestamp()
            current["metadata"]["deletionGracePeriodSeconds"] = grace
            return current

        return self._store.update("pods", key, mark)

    def _delete_namespace(self, key: Key) -> Obj:
        namespace = key[1]

        def terminating(current: Obj) -> Obj:
            current["metadata"]["deletionTimestamp"] = timestamp()
            current["status"] = {"phase": "Terminating"}
            return current

        marked = self._store.update("namespaces", key, terminating)
        for plural in ("pods", "services", "events", "leases"):
            items, _ = self._store.list_objects(plural, namespace)
            for item in items:
                try:
                    self._store.delete(plural, (namespace, item["metadata"]["name"]))
                except NotFound:
                    continue
        self._store.delete("namespaces", key)
        return marked

    def _prepare_service(self, service: Obj) -> None:
        spec = service.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") != "None":
            with self._service_ips_lock:
                number = next(self._service_ips)
            spec["clusterIP"] = f"10.96.{number // 256 % 256}.{number % 256}"
        spec["clusterIPs"] = [spec["clusterIP"]]
        service["status"] = {"loadBalancer": {}}

    def _bind(self, target: _Target, binding: Obj) -> Obj:
        node = (binding.get("target") or {}).get("name")
        if not node:
            raise Invalid("Binding is invalid: target.name: Required value", kind="Binding")

        def bind(pod: Obj) -> Obj:
            bound_to = pod["spec"].get("nodeName")
            if bound_to:
                raise Conflict(
                    f'Operation cannot be fulfilled on pods/binding "{target.name}": pod '
                    f'{target.name} is already assigned to node "{bound_to}"',
                    kind="pods/binding",
                    name=target.name,
                )
            if pod["metadata"].get("deletionTimestamp"):
                raise Conflict(f"pod {target.name} is being deleted, cannot be assigned")
            pod["spec"]["nodeName"] = node
            return podstatus.bound(pod)

        self._store.update("pods", target.key, bind)
        return _success(201)

    def _access_review(self, request: ApiRequest) -> Response:
        # kubectl posts reviews as protobuf; the embedded cluster allows everything, so an
        # unreadable body only loses the echoed spec.
        try:
            review = _json_body(request)
        except BadRequest:
            review = {}
        review.setdefault("metadata", {})["creationTimestamp"] = None
        review["apiVersion"] = "authorization.k8s.io/v1"
        review["kind"] = "SelfSubjectAccessReview"
        review["status"] = {"allowed": True, "reason": "the embedded cluster allows everything"}
        if self._authorizer is not None and self._authorizer.enforcing:
            attributes = (review.get("spec") or {}).get("resourceAttributes") or {}
            resource = str(attributes.get("resource", ""))
            if attributes.get("subresource"):
                resource = f"{resource}/{attributes['subresource']}"
            allowed = self._authorizer.would_allow(
                str(attributes.get("verb", "")),
                str(attributes.get("group", "")),
                resource,
                attributes.get("namespace") or None,
            )
            review["status"] = {"allowed": allowed, "reason": "RBAC of the embedded cluster"}
        return JsonResponse(201, review)

    def _pod_log(self, target: _Target, query: Mapping[str, str]) -> Response:
        pod = self._store.get("pods", target.key)
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        container = query.get("container") or containers[0]
        if container not in containers:
            raise BadRequest(
                f"container {container} is not valid for pod {target.name}", name=target.name
            )
        uid = pod["metadata"]["uid"]
        lines = self._logs.lines(uid)
        if not lines and pod["status"].get("phase") == "Pending":
            raise BadRequest(
                f'container "{container}" in pod "{target.name}" is waiting to start: '
                "ContainerCreating",
                name=target.name,
            )
        start = 0
        if "tailLines" in query:
            start = max(0, len(lines) - int(query["tailLines"]))
        if query.get("follow") in ("true", "1") and pod["status"].get("phase") not in (
            TERMINAL_PHASES
        ):
            chunks = (
                f"{line}\n" for line in self._logs.follow(uid, start, self._watches.stopping.is_set)
            )
            return StreamResponse("text/plain", chunks)
        return TextResponse(200, "".join(f"{line}\n" for line in lines[start:]))


def _split_status(resource: Resource, current: Obj, changed: Obj, status_only: bool) -> Obj:
    """Writes to ``.../status`` change only status; writes to the object keep its status."""
    if status_only:
        return {**current, "status": changed.get("status", current.get("status"))}
    if resource.plural in _STATUS_SUBRESOURCES and "status" in current:
        return {**changed, "status": current["status"]}
    return changed


def _json_body(request: ApiRequest) -> Obj:
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError as error:
        raise BadRequest(f"invalid JSON body: {error}") from error
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _delete_options(request: ApiRequest) -> dict[str, Any]:
    options = _json_body(request) if request.body.strip() else {}
    if "gracePeriodSeconds" in request.query:
        try:
            options["gracePeriodSeconds"] = int(request.query["gracePeriodSeconds"])
        except ValueError as error:
            raise BadRequest("gracePeriodSeconds must be an integer") from error
    return options


def _check_preconditions(current: Obj, options: Mapping[str, Any]) -> None:
    preconditions = options.get("preconditions") or {}
    metadata = current["metadata"]
    for option, stored in (("uid", "uid"), ("resourceVersion", "resourceVersion")):
        wanted = preconditions.get(option)
        if wanted and wanted != metadata[stored]:
            raise Conflict(
                f"Precondition failed: {option}: {wanted}, object {option}: {metadata[stored]}",
                name=metadata["name"],
            )


def _namespace_object(name: str) -> Obj:
    body: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    _prepare_namespace(body)
    return body


def _prepare_namespace(namespace: Obj) -> None:
    labels = namespace["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = namespace["metadata"]["name"]
    namespace["spec"] = {"finalizers": ["kubernetes"]}
    namespace["status"] = {"phase": "Active"}


def _prepare_pod(pod: Obj) -> None:
    spec = pod.get("spec")
    name = pod["metadata"]["name"]
    if not isinstance(spec, dict) or not spec.get("containers"):
        raise Invalid(
            f'Pod "{name}" is invalid: spec.containers: Required value', kind="Pod", name=name
        )
    for index, container in enumerate(spec["containers"]):
        for required in ("name", "image"):
            if not container.get(required):
                raise Invalid(
                    f'Pod "{name}" is invalid: spec.containers[{index}].{required}: Required value',
                    kind="Pod",
                    name=name,
                )
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    pod["status"] = podstatus.initial_status(pod)
