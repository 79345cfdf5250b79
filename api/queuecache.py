"""The queue explanation, computed once per change of state and shared by every request.

``GET /v1/tenants/{name}/queue``, ``GET /v1/queue`` and the portal's queue fragment (loaded by
every tenant page and refreshed every 10 s by each viewer) explain the whole queue with the
scheduler's cycle: building the snapshot and running the cycle costs tens of milliseconds with
a few hundred jobs waiting or running, and its tail missed the portal's 100 ms. The answer only
changes when the stored state does (:func:`store.changes.queue_version`) or, for what the clock
alone moves (a backoff ending), at the scheduler's next iteration, which rewrites the version
anyway: so one explanation of the whole queue is kept per API process under the version it was
computed at, for at most ``max_age`` seconds (the scheduler's cycle interval), and each request
takes its tenant's part of it. Concurrent misses compute it once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from api.schemas import QueueEntryOut

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    version: Hashable
    computed_at: float
    value: T


class VersionedCache(Generic[T]):
    """One value, kept while the version it was computed at is current and it is younger
    than ``max_age`` seconds."""

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._entry: _Entry[T] | None = None
        self._lock = threading.Lock()

    def get(self, version: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            entry, now = self._entry, self._clock()
            if entry and entry.version == version and now - entry.computed_at < self.max_age:
                return entry.value
            value = compute()
            self._entry = _Entry(version, now, value)
            return value


QueueCache = VersionedCache[list[QueueEntryOut]]
"""The whole queue's explanation, in order (``api.routers.queue``)."""
