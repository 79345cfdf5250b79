"""Watch streams of the embedded API server, with the real server's semantics.

* ``resourceVersion`` unset or ``"0"``: synthetic ADDED events for the current objects, then
  live changes; ``N``: every change after ``N`` from the store history, then live changes.
* A version older than the retained history: one ERROR event carrying a 410 ``Expired``
  Status, then the stream ends (the client must re-list).
* Selectors apply to both the old and the new object of a change, so an object that stops
  matching is reported DELETED and one that starts matching ADDED, like the watch cache does.
* ``allowWatchBookmarks`` adds BOOKMARK events carrying the current resourceVersion;
  ``timeoutSeconds`` ends the stream cleanly; :meth:`FaultInjector.drop_watches` cuts it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from k8s.sim.errors import BadRequest, Gone
from k8s.sim.faults import FaultInjector
from k8s.sim.resources import Resource
from k8s.sim.selectors import Predicate, parse_selection
from k8s.sim.store import Change, Obj, ObjectStore
from k8s.sim.tables import table

DEFAULT_TIMEOUT = 1800.0
_POLL = 0.5

Render = Callable[[Obj], Obj]


@dataclass(frozen=True, slots=True)
class _Watch:
    resource: Resource
    namespace: str | None
    selected: Predicate
    revision: int
    deadline: float
    bookmarks: bool
    render: Render
    generation: int


def parse_revision(query: Mapping[str, str]) -> int:
    raw = query.get("resourceVersion") or "0"
    try:
        return int(raw)
    except ValueError as error:
        raise BadRequest(f"invalid resource version {raw!r}") from error


class WatchStreams:
    """Opens watch streams over one store; :meth:`stop` ends them all."""

    def __init__(
        self, store: ObjectStore, faults: FaultInjector, *, bookmark_interval: float = 5.0
    ) -> None:
        self._store = store
        self._faults = faults
        self._bookmark_interval = bookmark_interval
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._store.wake_watchers()

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    def open(
        self,
        resource: Resource,
        namespace: str | None,
        query: Mapping[str, str],
        *,
        as_table: bool = False,
    ) -> Iterator[str]:
        """Validate the parameters now (errors stay plain responses), stream lazily."""
        try:
            timeout = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT)
        except ValueError as error:
            raise BadRequest("timeoutSeconds must be a number") from error
        watch = _Watch(
            resource=resource,
            namespace=namespace,
            selected=parse_selection(query),
            revision=parse_revision(query),
            deadline=time.monotonic() + timeout,
            bookmarks=query.get("allowWatchBookmarks") in ("true", "1"),
            render=_table_renderer(resource) if as_table else _plain,
            generation=self._faults.watch_generation,
        )
        return self._stream(watch)

    def _stream(self, watch: _Watch) -> Iterator[str]:
        plural = watch.resource.plural
        revision = watch.revision
        if revision == 0:
            items, revision = self._store.list_objects(plural, watch.namespace)
            for item in items:
                if watch.selected(item):
                    yield _line("ADDED", watch.render(item))
        last_bookmark = time.monotonic()
        while not self._stopping.is_set() and watch.generation == self._faults.watch_generation:
            remaining = watch.deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                changes, revision_reached = self._store.wait_for_changes(
                    plural, revision, min(remaining, _POLL)
                )
            except Gone as error:
                yield _line("ERROR", error.status())
                return
            for change in changes:
                line = _event_line(change, watch)
                if line is not None:
                    yield line
            revision = revision_reached
            if watch.bookmarks and time.monotonic() - last_bookmark >= self._bookmark_interval:
                last_bookmark = time.monotonic()
                yield _line("BOOKMARK", _bookmark(watch.resource, revision))


def _event_line(change: Change, watch: _Watch) -> str | None:
    if watch.namespace is not None and change.obj["metadata"].get("namespace") != watch.namespace:
        return None
    now_matches = watch.selected(change.obj)
    matched_before = change.previous is not None and watch.selected(change.previous)
    if change.type != "MODIFIED":
        event_type = change.type if now_matches else None
    elif now_matches:
        event_type = "MODIFIED" if matched_before else "ADDED"
    else:
        event_type = "DELETED" if matched_before else None
    return None if event_type is None else _line(event_type, watch.render(change.obj))


def _table_renderer(resource: Resource) -> Render:
    return lambda obj: table(resource, [obj], int(obj["metadata"]["resourceVersion"]))


def _plain(obj: Obj) -> Obj:
    return obj


def _line(event_type: str, obj: Mapping[str, Any]) -> str:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n"


def _bookmark(resource: Resource, revision: int) -> Obj:
    return {
        "kind": resource.kind,
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": str(revision)},
    }
