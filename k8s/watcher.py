"""A cached, event-driven view of the cluster's pods and nodes for the scheduler loop.

One background thread per resource runs the classic list-then-watch loop: list to get a full
snapshot and its resourceVersion, then watch from that version, applying ADDED / MODIFIED /
DELETED events to the cache and remembering the newest version seen (bookmarks included). When a
watch ends (server timeout, dropped connection) it resumes from that version; when the server
answers 410 Gone (the version was compacted away) it relists. Connection failures back off
with jitter and leave the last good cache in place; :attr:`ClusterWatcher.last_error` says why
until a list or watch succeeds again (the scheduler loop waits meanwhile, as it would for a
failed LIST). Listeners hear about both transitions.

Every applied change sets :attr:`ClusterWatcher.changed` and calls the listeners registered
with :meth:`ClusterWatcher.add_listener`, so the scheduler loop wakes on cluster events instead
of polling; bookmarks move the resourceVersion but wake nobody. All pods are watched, not only
Yushan's: the GPUs held by other pods on a node (``NodeInfo.foreign``) come from the same cache.

This is the scheduler loop's only view of the cluster in production (an informer, in client-go
terms): one LIST per resource at start and after 410 Gone, then WATCH. ``resync_seconds``
(``YUSHAN_RESYNC_INTERVAL_SECONDS``) adds a rare full relist as a safety net against a cache
that drifted for reasons the protocol cannot see; 0 disables it. The folded view (nodes and
gang observations) is recomputed only when the cache changed since the last call.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
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
        self.listed_at = 0.0

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
        resync_seconds: float = 0.0,
    ) -> None:
        self.client = client
        self.watch_timeout_seconds = watch_timeout_seconds
        self.backoff_max = backoff_max
        self.resync_seconds = resync_seconds
        self.changed = threading.Event()
        self.last_error: ClusterError | None = None
        self._listeners: list[Callable[[], None]] = []
        self._generation = 0
        self._folded: tuple[int, list[NodeInfo], dict[str, GangObservation]] | None = None
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

    @property
    def synced(self) -> bool:
        return self._pods.synced.is_set() and self._nodes.synced.is_set()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from a watch thread; it must be quick) after every change."""
        self._listeners.append(listener)

    # -- the cached view ------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        return self.snapshot()[0]

    def gangs(self) -> dict[str, GangObservation]:
        """Observations of every job with Yushan pods, with node-loss detection."""
        return self.snapshot()[1]

    def snapshot(self) -> tuple[list[NodeInfo], dict[str, GangObservation]]:
        """Nodes and gangs computed from one consistent copy of the cache.

        Raises :class:`ClusterError` until both resources were listed once. The result is
        shared between calls while the cache does not change: treat it as read-only.
        """
        if not self.synced:
            raise self.last_error or ClusterError("the cluster cache is not synced yet")
        with self._lock:
            folded = self._folded
            if folded is not None and folded[0] == self._generation:
                return folded[1], folded[2]
            generation = self._generation
            nodes = list(self._nodes.objects.values())
            pods = list(self._pods.objects.values())
        installation = self.client.options.installation
        infos = node_infos(nodes, pods, installation)
        gangs = gang_observations(pods, {n.name: n for n in infos}, installation)
        with self._lock:
            self._folded = (generation, infos, gangs)
        return infos, gangs

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
                if cache.resource_version is None or self._resync_due(cache):
                    self._relist(cache)
                self._watch(cache)
                failures = 0
            except ClusterGone:
                cache.resource_version = None
            except Exception as exc:  # any failure: back off, then resume from the last version
                if self._stopping.is_set():
                    return
                self._set_error(translate_error(exc))
                failures += 1
                log.warning("watch %s failed (%s); retrying", cache.path, self.last_error)
                delay = random.random() * min(self.backoff_max, 0.05 * 2.0**failures)
                self._stopping.wait(delay)

    def _resync_due(self, cache: _ResourceCache) -> bool:
        return self.resync_seconds > 0 and time.monotonic() - cache.listed_at >= self.resync_seconds

    def _relist(self, cache: _ResourceCache) -> None:
        items, version = self.client.list_objects(cache.path, retry=NO_RETRY)
        with self._lock:
            cache.objects = {cache.key(obj): obj for obj in items}
            cache.resource_version = version
            cache.relists += 1
            cache.listed_at = time.monotonic()
            self._generation += 1
        cache.synced.set()
        self.last_error = None
        self._notify()

    def _set_error(self, error: ClusterError | None) -> None:
        was = self.last_error
        self.last_error = error
        if (was is None) != (error is None):
            self._notify()

    def _notify(self) -> None:
        self.changed.set()
        for listener in self._listeners:
            listener()

    def _watch_timeout(self, cache: _ResourceCache) -> int:
        """End the watch when the next resync is due (never later than the usual timeout)."""
        timeout = self.watch_timeout_seconds
        if self.resync_seconds > 0:
            left = cache.listed_at + self.resync_seconds - time.monotonic()
            timeout = min(timeout, max(1, int(left) + 1))
        return timeout

    def _watch(self, cache: _ResourceCache) -> None:
        query = {
            "watch": True,
            "resourceVersion": cache.resource_version,
            "allowWatchBookmarks": True,
            "timeoutSeconds": self._watch_timeout(cache),
        }
        response = self.client.transport.open_stream(cache.path, query=query, retry=NO_RETRY)
        self._set_error(None)
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
                self._generation += 1
        if kind != "BOOKMARK":
            self._notify()


def _abort(response: urllib3.HTTPResponse) -> None:
    """Unblock a thread reading ``response`` (used on stop)."""
    shutdown: Callable[[], None] | None = getattr(response, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        response.close()
    except Exception:  # best effort: the thread also notices the stop flag
        log.debug("closing a watch response failed", exc_info=True)
