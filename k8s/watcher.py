"""A cached, event-driven view of the cluster's pods and nodes for the scheduler loop.

One background thread per resource runs the classic list-then-watch loop: list to get a full
snapshot and its resourceVersion, then watch from that version, applying ADDED / MODIFIED /
DELETED events to the cache and remembering the newest version seen (bookmarks included). When a
watch ends (server timeout, dropped connection) it resumes from that version; when the server
answers 410 Gone (the version was compacted away) it relists. Connection failures back off
with jitter and leave the last good cache in place, so the loop keeps scheduling on slightly
stale data rather than none, and :attr:`ClusterWatcher.last_error` says why.

Every applied change sets :attr:`ClusterWatcher.changed`, so the loop can sleep on that event
instead of polling. All pods are watched, not only Yushan's: the GPUs held by other pods on a
node (``NodeInfo.foreign``) come from the same cache.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import urllib3

from k8s.client import CORE, ClusterClient
from k8s.errors import (
    NO_RETRY,
    ClusterError,
    ClusterGone,
    error_from_status,
    translate_error,
)
from k8s.observe import gang_observations, node_infos
from k8s.transport import JsonObject, iter_lines
from k8s.types import GangObservation, NodeInfo

log = logging.getLogger(__name__)


class _ResourceCache:
    """The objects of one resource kind, keyed by namespace/name, kept by one watch thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.objects: dict[tuple[str, str], JsonObject] = {}
        self.resource_version: str | None = None
        self.synced = threading.Event()
        self.relists = 0
        self.resumes = 0

    @staticmethod
    def key(obj: JsonObject) -> tuple[str, str]:
        metadata = obj.get("metadata") or {}
        return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


class ClusterWatcher:
    """Background list+watch of pods and nodes; read the latest view at any time.

    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        client: ClusterClient,
        *,
        watch_timeout_seconds: int = 60,
        backoff_max: float = 2.0,
    ) -> None:
        self.client = client
        self.watch_timeout_seconds = watch_timeout_seconds
        self.backoff_max = backoff_max
        self.changed = threading.Event()
        self.last_error: ClusterError | None = None
        self._pods = _ResourceCache(f"{CORE}/pods")
        self._nodes = _ResourceCache(f"{CORE}/nodes")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._responses: set[urllib3.HTTPResponse] = set()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> ClusterWatcher:
        for cache in (self._pods, self._nodes):
            thread = threading.Thread(
                target=self._run, args=(cache,), name=f"yushan-watch{cache.path}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            responses = list(self._responses)
        for response in responses:
            _abort(response)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def __enter__(self) -> ClusterWatcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_synced(self, timeout: float) -> bool:
        """Whether both pods and nodes were listed at least once within ``timeout`` seconds."""
        return self._pods.synced.wait(timeout) and self._nodes.synced.wait(timeout)

    # -- the cached view ------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        return self.snapshot()[0]

    def gangs(self) -> dict[str, GangObservation]:
        """Observations of every job with Yushan pods, with node-loss detection."""
        return self.snapshot()[1]

    def snapshot(self) -> tuple[list[NodeInfo], dict[str, GangObservation]]:
        """Nodes and gangs computed from one consistent copy of the cache."""
        with self._lock:
            nodes = list(self._nodes.objects.values())
            pods = list(self._pods.objects.values())
        infos = node_infos(nodes, pods)
        return infos, gang_observations(pods, {n.name: n for n in infos})

    def pods(self) -> list[JsonObject]:
        with self._lock:
            return list(self._pods.objects.values())

    def stats(self) -> dict[str, int]:
        """How often each watch relisted (410 or first sync) and resumed after a break."""
        return {
            "pod_relists": self._pods.relists,
            "pod_resumes": self._pods.resumes,
            "node_relists": self._nodes.relists,
            "node_resumes": self._nodes.resumes,
        }

    # -- the watch loop -------------------------------------------------------------------

    def _run(self, cache: _ResourceCache) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                if cache.resource_version is None:
                    self._relist(cache)
                self._watch(cache)
                failures = 0
            except ClusterGone:
                cache.resource_version = None
            except Exception as exc:  # any failure: back off, then resume from the last version
                if self._stopping.is_set():
                    return
                self.last_error = translate_error(exc)
                failures += 1
                log.warning("watch %s failed (%s); retrying", cache.path, self.last_error)
                delay = random.random() * min(self.backoff_max, 0.05 * 2.0**failures)
                self._stopping.wait(delay)

    def _relist(self, cache: _ResourceCache) -> None:
        items, version = self.client.list_objects(cache.path, retry=NO_RETRY)
        with self._lock:
            cache.objects = {cache.key(obj): obj for obj in items}
            cache.resource_version = version
            cache.relists += 1
        cache.synced.set()
        self.last_error = None
        self.changed.set()

    def _watch(self, cache: _ResourceCache) -> None:
        query = {
            "watch": True,
            "resourceVersion": cache.resource_version,
            "allowWatchBookmarks": True,
            "timeoutSeconds": self.watch_timeout_seconds,
        }
        response = self.client.transport.open_stream(cache.path, query=query, retry=NO_RETRY)
        with self._lock:
            self._responses.add(response)
        try:
            if self._stopping.is_set():
                return
            for line in iter_lines(response):
                self._apply(cache, json.loads(line))
        finally:
            with self._lock:
                self._responses.discard(response)
            response.release_conn()
        cache.resumes += 1

    def _apply(self, cache: _ResourceCache, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj: JsonObject = event.get("object") or {}
        if kind == "ERROR":
            raise error_from_status(int(obj.get("code") or 500), json.dumps(obj))
        version = (obj.get("metadata") or {}).get("resourceVersion")
        with self._lock:
            if kind in ("ADDED", "MODIFIED"):
                cache.objects[cache.key(obj)] = obj
            elif kind == "DELETED":
                cache.objects.pop(cache.key(obj), None)
            if version:
                cache.resource_version = str(version)
        if kind != "BOOKMARK":
            self.changed.set()


def _abort(response: urllib3.HTTPResponse) -> None:
    """Unblock a thread reading ``response`` (used on stop)."""
    shutdown: Callable[[], None] | None = getattr(response, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        response.close()
    except Exception:  # best effort: the thread also notices the stop flag
        log.debug("closing a watch response failed", exc_info=True)
