"""Fault injection for the embedded API server, so adapter tests can provoke real failures.

Faults apply to resource requests only (not discovery or ``/version``). Each rule is consumed
by the next matching requests:

* :meth:`FaultInjector.fail_next` answers ``n`` requests with a ``Status`` error of the given
  HTTP code (429/503 may carry ``Retry-After``); ``verb`` (``get``, ``list``, ``watch``,
  ``create``, ``update``, ``patch``, ``delete``, ``deletecollection``) and ``resource`` (the
  plural, with the subresource for those: ``pods``, ``pods/binding``, ``pods/log``,
  ``leases``) narrow which requests match;
* :meth:`FaultInjector.delay_next` stalls ``n`` requests before serving them;
* :meth:`FaultInjector.drop_watches` closes every open watch stream now;
* :meth:`FaultInjector.compact` forgets the change history, so watches and exact lists from an
  older resourceVersion get 410 Gone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from k8s.sim.errors import InjectedFault
from k8s.sim.store import ObjectStore


@dataclass(slots=True)
class _Rule:
    remaining: int
    verb: str | None
    resource: str | None
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0

    def matches(self, verb: str, resource: str) -> bool:
        return (self.verb is None or self.verb == verb) and (
            self.resource is None or self.resource == resource
        )


class FaultInjector:
    """Thread-safe queue of injected failures consulted by every resource request."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._failures: list[_Rule] = []
        self._delays: list[_Rule] = []
        self._watch_generation = 0

    def fail_next(
        self,
        n: int,
        status: int,
        *,
        verb: str | None = None,
        resource: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        with self._lock:
            self._failures.append(_Rule(n, verb, resource, status, retry_after))

    def delay_next(
        self, n: int, seconds: float, *, verb: str | None = None, resource: str | None = None
    ) -> None:
        with self._lock:
            self._delays.append(_Rule(n, verb, resource, delay=seconds))

    def drop_watches(self) -> None:
        with self._lock:
            self._watch_generation += 1
        self._store.wake_watchers()

    def compact(self) -> int:
        """Forget history; returns the revision below which resourceVersions are now too old."""
        return self._store.compact()

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    @property
    def watch_generation(self) -> int:
        """Bumped by :meth:`drop_watches`; a watch stream ends when it sees a change."""
        with self._lock:
            return self._watch_generation

    def take_delay(self, verb: str, resource: str) -> float:
        with self._lock:
            rule = _consume(self._delays, verb, resource)
        return rule.delay if rule else 0.0

    def take_failure(self, verb: str, resource: str) -> InjectedFault | None:
        with self._lock:
            rule = _consume(self._failures, verb, resource)
        if rule is None:
            return None
        return InjectedFault(rule.status, retry_after=rule.retry_after)


def _consume(rules: list[_Rule], verb: str, resource: str) -> _Rule | None:
    for rule in rules:
        if rule.matches(verb, resource):
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.remove(rule)
            return rule
    return None
