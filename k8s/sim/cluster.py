"""The embedded cluster: a simulated Kubernetes API server on loopback plus its kubelet.

:class:`EmbeddedCluster` wires the pieces together (object store, simulated kubelet, API
semantics, HTTP server, fault injector) and offers the in-process control surface tests and
``make run`` use: start/stop, kubeconfig, a configured official client, node manipulation,
inspection and request counts.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from types import TracebackType

import yaml
from kubernetes import client as k8s_client

from k8s.sim.api import SimApi
from k8s.sim.errors import NotFound, SimError
from k8s.sim.faults import FaultInjector
from k8s.sim.kubelet import PodLogs, SimKubelet
from k8s.sim.nodes import (
    NODE_LEASE_NAMESPACE,
    NodeSpec,
    load_node_specs,
    node_lease,
    node_object,
    ready_condition,
)
from k8s.sim.rbac import RbacAuthorizer
from k8s.sim.server import SimHttpServer
from k8s.sim.store import Obj, ObjectStore

_TOKEN = "yushan-embedded-token"


class EmbeddedCluster:
    """A simulated cluster serving the Kubernetes API on ``host:port`` (port 0: ephemeral).

    ``time_scale`` multiplies every simulated duration (pod run time, startup delay, grace
    periods, active deadlines): ``0.01`` makes a 60 s pod finish in 0.6 s.
    """

    def __init__(
        self,
        nodes_file: Path | None = None,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        startup_delay: float = 0.5,
        bookmark_interval: float = 5.0,
        history_limit: int = 10_000,
        authorizer: RbacAuthorizer | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._store = ObjectStore(history_limit=history_limit)
        self._logs = PodLogs()
        self.faults = FaultInjector(self._store)
        self._kubelet = SimKubelet(
            self._store, self._logs, time_scale=time_scale, startup_delay=startup_delay
        )
        self._api = SimApi(
            self._store,
            self._logs,
            self.faults,
            bookmark_interval=bookmark_interval,
            authorizer=authorizer,
        )
        self._server: SimHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._node_count = 0
        for spec in load_node_specs(nodes_file):
            self.add_node(spec)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Serve in background threads; a cluster starts once (a stopped one stays stopped)."""
        if self._server is not None or self._stopped:
            raise SimError("the embedded cluster can only be started once")
        self._server = SimHttpServer((self._host, self._port), self._api)
        self._kubelet.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="sim-apiserver",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        self._api.stop()
        self._kubelet.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise SimError("the embedded cluster is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- clients ----------------------------------------------------------------------------

    def write_kubeconfig(self, path: Path, context: str = "yushan-embedded") -> Path:
        """Write a kubeconfig for ``kubectl`` and ``kubernetes.config.load_kube_config``."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": _TOKEN}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": "default"},
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def api_client(self) -> k8s_client.ApiClient:
        """A ``kubernetes.client.ApiClient`` configured for this cluster; close it when done."""
        configuration = k8s_client.Configuration()
        configuration.host = self.url
        configuration.api_key = {"authorization": _TOKEN}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return k8s_client.ApiClient(configuration)

    # -- control ----------------------------------------------------------------------------

    def add_node(self, spec: NodeSpec) -> Obj:
        """Create a node (Ready unless ``spec.ready`` is false) and its heartbeat Lease."""
        self._node_count += 1
        node = self._store.create("nodes", node_object(spec, self._node_count))
        self._store.create("leases", node_lease(node))
        return node

    def set_node_ready(self, name: str, ready: bool) -> Obj:
        def flip(node: Obj) -> Obj:
            others = [c for c in node["status"]["conditions"] if c["type"] != "Ready"]
            node["status"]["conditions"] = [ready_condition(ready), *others]
            return node

        return self._store.update("nodes", ("", name), flip)

    def remove_node(self, name: str) -> None:
        """Delete a node; the kubelet fails and removes the pods that were bound to it."""
        self._store.delete("nodes", ("", name))
        with contextlib.suppress(NotFound):
            self._store.delete("leases", (NODE_LEASE_NAMESPACE, name))

    def nodes(self) -> list[Obj]:
        return self._store.list_objects("nodes")[0]

    def pods(self, namespace: str | None = None) -> list[Obj]:
        """Current pods (read-only dicts in API shape), optionally of one namespace."""
        return self._store.list_objects("pods", namespace)[0]

    def events(self, namespace: str | None = None) -> list[Obj]:
        return self._store.list_objects("events", namespace)[0]

    def request_count(self, verb: str | None = None, resource: str | None = None) -> int:
        """Resource requests served so far, e.g. ``request_count("create", "pods")``."""
        return self._api.request_count(verb, resource)

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion."""
        return self._store.revision
