"""An etcd-like object store: one global, monotonically increasing resourceVersion, a bounded
history of changes for watches, and compaction.

Objects are plain JSON dicts in the API's own shape. Every write stores a fresh dict and old
dicts are never mutated afterwards, so readers may hold references without copying; callers
must treat what they get back as read-only.

A watch from resourceVersion ``N`` is served from the history when every change after ``N`` is
still retained; otherwise :class:`~k8s.sim.errors.Gone` (HTTP 410), exactly as a compacted etcd
behind the real API server answers.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from k8s.sim.errors import AlreadyExists, Conflict, Gone, NotFound
from k8s.sim.objects import timestamp

Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name); the namespace is ``""`` for cluster-scoped objects."""


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write, as watches replay it."""

    resource_version: int
    resource: str
    type: str
    obj: Obj
    previous: Obj | None


Listener = Callable[[Change], None]


def object_key(obj: Mapping[str, Any]) -> Key:
    metadata = obj.get("metadata", {})
    return (metadata.get("namespace") or "", metadata["name"])


class ObjectStore:
    """Thread-safe storage of all resources plus the change history."""

    def __init__(self, history_limit: int = 10_000) -> None:
        self._cond = threading.Condition()
        self._revision = 0
        self._objects: dict[str, dict[Key, Obj]] = {}
        self._history: deque[Change] = deque()
        self._history_limit = history_limit
        self._compacted = 0
        self._listeners: list[Listener] = []

    @property
    def condition(self) -> threading.Condition:
        """Notified after every write and by :meth:`wake_watchers`."""
        return self._cond

    @property
    def revision(self) -> int:
        with self._cond:
            return self._revision

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` after each commit (outside the store lock)."""
        self._listeners.append(listener)

    def get(self, resource: str, key: Key) -> Obj:
        with self._cond:
            obj = self._objects.get(resource, {}).get(key)
        if obj is None:
            raise NotFound(f'{resource} "{key[1]}" not found', kind=resource, name=key[1])
        return obj

    def find(self, resource: str, key: Key) -> Obj | None:
        with self._cond:
            return self._objects.get(resource, {}).get(key)

    def list_objects(self, resource: str, namespace: str | None = None) -> tuple[list[Obj], int]:
        """Objects of ``resource`` (in ``namespace`` if given) and the revision they reflect."""
        with self._cond:
            items = [
                obj
                for (obj_namespace, _name), obj in self._objects.get(resource, {}).items()
                if namespace is None or obj_namespace == namespace
            ]
            return sorted(items, key=object_key), self._revision

    def create(self, resource: str, obj: Obj) -> Obj:
        key = object_key(obj)
        with self._cond:
            if key in self._objects.setdefault(resource, {}):
                raise AlreadyExists(
                    f'{resource} "{key[1]}" already exists', kind=resource, name=key[1]
                )
            stored = copy.deepcopy(obj)
            metadata = stored["metadata"]
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", timestamp())
            change = self._commit(resource, key, "ADDED", stored, None)
        self._notify(change)
        return change.obj

    def update(
        self,
        resource: str,
        key: Key,
        mutate: Callable[[Obj], Obj | None],
        expected_version: str | None = None,
    ) -> Obj:
        """Atomically replace an object with ``mutate(copy)``; a ``None`` result is a no-op.

        With ``expected_version`` the write fails with 409 Conflict unless it is still the
        stored resourceVersion (optimistic concurrency, as for ``PUT``).
        """
        with self._cond:
            current = self._objects.get(resource, {}).get(key)
            if current is None:
                raise NotFound(f'{resource} "{key[1]}" not found', kind=resource, name=key[1])
            if expected_version and expected_version != current["metadata"]["resourceVersion"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on {resource} "{key[1]}": the object has '
                    "been modified; please apply your changes to the latest version and try "
                    "again",
                    kind=resource,
                    name=key[1],
                )
            replacement = mutate(copy.deepcopy(current))
            if replacement is None:
                return current
            metadata = replacement["metadata"]
            for immutable in ("uid", "creationTimestamp", "name", "namespace"):
                if immutable in current["metadata"]:
                    metadata[immutable] = current["metadata"][immutable]
            change = self._commit(resource, key, "MODIFIED", replacement, current)
        self._notify(change)
        return change.obj

    def delete(self, resource: str, key: Key) -> Obj:
        with self._cond:
            current = self._objects.get(resource, {}).get(key)
            if current is None:
                raise NotFound(f'{resource} "{key[1]}" not found', kind=resource, name=key[1])
            gone = copy.deepcopy(current)
            change = self._commit(resource, key, "DELETED", gone, current)
        self._notify(change)
        return change.obj

    def changes_since(self, resource: str, revision: int) -> tuple[list[Change], int]:
        """Changes of ``resource`` after ``revision`` and the store revision they reach.

        Raises :class:`Gone` if some change after ``revision`` has been compacted away.
        """
        with self._cond:
            return self._changes_since_locked(resource, revision)

    def wait_for_changes(
        self, resource: str, revision: int, timeout: float
    ) -> tuple[list[Change], int]:
        """Like :meth:`changes_since` but waits up to ``timeout`` seconds for one to happen."""
        with self._cond:
            if self._revision <= revision:
                self._cond.wait(timeout)
            return self._changes_since_locked(resource, revision)

    def compact(self) -> int:
        """Forget all history; resourceVersions older than the current one become 410 Gone."""
        with self._cond:
            self._history.clear()
            self._compacted = self._revision
            self._cond.notify_all()
            return self._compacted

    def wake_watchers(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _changes_since_locked(self, resource: str, revision: int) -> tuple[list[Change], int]:
        if revision < self._compacted:
            raise Gone(f"too old resource version: {revision} ({self._compacted})")
        changes: list[Change] = []
        for change in reversed(self._history):
            if change.resource_version <= revision:
                break
            if change.resource == resource:
                changes.append(change)
        changes.reverse()
        return changes, self._revision

    def _commit(
        self, resource: str, key: Key, change_type: str, obj: Obj, previous: Obj | None
    ) -> Change:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        bucket = self._objects.setdefault(resource, {})
        if change_type == "DELETED":
            del bucket[key]
        else:
            bucket[key] = obj
        change = Change(self._revision, resource, change_type, obj, previous)
        self._history.append(change)
        while len(self._history) > self._history_limit:
            self._compacted = self._history.popleft().resource_version
        self._cond.notify_all()
        return change

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)
