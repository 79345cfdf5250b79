"""A short-lived cache of authenticated principals, keyed by the token's hash.

Looking a token up costs two queries; under load that is most of a submission's database
time. Entries live ``ttl`` seconds (``YUSHAN_AUTH_CACHE_SECONDS``, default 5; 0 disables).
Changes made through this process (token revoked, membership changed, tenant deleted) clear the
cache at once; another API process sees them within ``ttl`` seconds. A token's expiry is exact
in every process: :func:`api.deps.get_principal` checks it on each use of a cached principal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from store.users import Principal

MAX_ENTRIES = 10_000


class PrincipalCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, principal = entry
            if expires <= self._clock():
                del self._entries[key]
                return None
            return principal

    def put(self, key: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (self._clock() + self.ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
