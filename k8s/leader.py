"""Leader election for the scheduler through a ``coordination.k8s.io/v1`` Lease.

The algorithm follows client-go's ``leaderelection`` package:

* A candidate reads the Lease. If it is held by someone else, the candidate only takes it over
  once the holder has not changed the record for ``lease_duration`` seconds *as measured by the
  candidate's own clock* from the moment it first saw that version (clock skew between
  replicas cannot shorten a lease).
* Every write is a ``PUT`` carrying the resourceVersion that was read, so two candidates racing
  for an expired lease cannot both win: the loser gets 409 Conflict.
* Fencing: :meth:`LeaderElector.is_leader` turns False as soon as ``renew_deadline`` has passed
  since the start of the last successful renewal, which is strictly before any other candidate
  can consider the lease expired (``renew_deadline < lease_duration``). The scheduler checks it
  before dispatching, so a partitioned leader stops acting before a successor starts.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client

_TRANSPORT_ERRORS = (client.ApiException, urllib3.exceptions.HTTPError, OSError)


class LeaderElectionError(Exception):
    """Invalid leader election settings."""


@dataclass(frozen=True, slots=True)
class _Observation:
    """The last lease record seen and when (local clock) it was first seen."""

    holder: str
    resource_version: str
    duration: float
    seen_at: float


class LeaderElector:
    """Acquires and renews one Lease for ``identity``; see the module docstring."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise LeaderElectionError(
                "need 0 < retry_period < renew_deadline < lease_duration, got "
                f"{retry_period}, {renew_deadline}, {lease_duration}"
            )
        if not identity:
            raise LeaderElectionError("the identity must not be empty")
        self._leases = client.CoordinationV1Api(api_client)
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._clock = clock
        self._renewed_at: float | None = None
        self._observed: _Observation | None = None
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        """True while the last successful renewal started less than ``renew_deadline`` ago."""
        with self._lock:
            renewed_at = self._renewed_at
        return renewed_at is not None and self._clock() - renewed_at < self._renew_deadline

    def try_acquire_or_renew(self) -> bool:
        """One election round: True if this candidate holds the lease afterwards."""
        attempt_started = self._clock()
        try:
            acquired = self._acquire_or_renew(attempt_started)
        except _TRANSPORT_ERRORS:
            # Unreachable or failing API server: keep the previous renewal; is_leader() fences
            # us once the renew deadline passes.
            return self.is_leader()
        with self._lock:
            self._renewed_at = attempt_started if acquired else None
        return acquired

    def release(self) -> None:
        """Give the lease up so another candidate can take over without waiting for expiry."""
        with self._lock:
            self._renewed_at = None
        try:
            lease = self._leases.read_namespaced_lease(
                self._name, self._namespace, _request_timeout=self._retry_period
            )
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = _now()
            self._leases.replace_namespaced_lease(
                self._name, self._namespace, lease, _request_timeout=self._retry_period
            )
        except _TRANSPORT_ERRORS:
            return

    def run(
        self,
        stop_event: threading.Event,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
    ) -> threading.Thread:
        """Start a daemon thread that campaigns every ``retry_period`` until ``stop_event``.

        The callbacks run on that thread; on stop the lease is released.
        """
        thread = threading.Thread(
            target=self._campaign,
            args=(stop_event, on_started_leading, on_stopped_leading),
            name=f"leader-elector-{self.identity}",
            daemon=True,
        )
        thread.start()
        return thread

    def _campaign(
        self,
        stop_event: threading.Event,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
    ) -> None:
        leading = False
        while not stop_event.is_set():
            self.try_acquire_or_renew()
            now_leading = self.is_leader()
            if now_leading and not leading:
                on_started_leading()
            elif leading and not now_leading:
                on_stopped_leading()
            leading = now_leading
            stop_event.wait(self._retry_period)
        self.release()
        if leading:
            on_stopped_leading()

    def _acquire_or_renew(self, now: float) -> bool:
        try:
            lease = self._leases.read_namespaced_lease(
                self._name, self._namespace, _request_timeout=self._retry_period
            )
        except client.ApiException as error:
            if error.status != 404:
                raise
            return self._create(now)
        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity or ""
        metadata = lease.metadata or client.V1ObjectMeta()
        self._observe(holder, metadata.resource_version or "", spec, now)
        if holder and holder != self.identity and not self._expired(now):
            return False
        transitions = spec.lease_transitions or 0
        if holder != self.identity:
            spec.acquire_time = _now()
            spec.lease_transitions = transitions + 1 if holder else transitions
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = math.ceil(self._lease_duration)
        spec.renew_time = _now()
        lease.spec = spec
        try:
            self._leases.replace_namespaced_lease(
                self._name, self._namespace, lease, _request_timeout=self._retry_period
            )
        except client.ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def _create(self, now: float) -> bool:
        lease = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self._name, namespace=self._namespace),
            spec=client.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=math.ceil(self._lease_duration),
                acquire_time=_now(),
                renew_time=_now(),
                lease_transitions=0,
            ),
        )
        try:
            self._leases.create_namespaced_lease(
                self._namespace, lease, _request_timeout=self._retry_period
            )
        except client.ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def _observe(self, holder: str, resource_version: str, spec: Any, now: float) -> None:
        previous = self._observed
        if previous is None or previous.resource_version != resource_version:
            duration = float(spec.lease_duration_seconds or self._lease_duration)
            self._observed = _Observation(holder, resource_version, duration, now)

    def _expired(self, now: float) -> bool:
        observed = self._observed
        return observed is None or now - observed.seen_at >= observed.duration


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
