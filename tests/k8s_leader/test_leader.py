"""Leader election through a Lease on the embedded cluster.

Electors get manual clocks, so lease expiry and the renew deadline are exercised exactly and
instantly; the API traffic is real HTTP against the simulated server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from k8s.leader import LeaderElectionError, LeaderElector
from k8s.sim import EmbeddedCluster

NAMESPACE = "kube-system"
LEASE = "yushan-scheduler"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(time_scale=0.01) as running:
        yield running


@pytest.fixture
def api_client(cluster: EmbeddedCluster) -> Iterator[Any]:
    configured: Any = cluster.api_client()
    yield configured
    configured.close()


class Candidate:
    """An elector with its own manual clock."""

    def __init__(self, api_client: Any, identity: str) -> None:
        self.clock = ManualClock()
        self.elector = LeaderElector(
            api_client,
            NAMESPACE,
            LEASE,
            identity,
            lease_duration=15.0,
            renew_deadline=10.0,
            retry_period=2.0,
            clock=self.clock,
        )


def holder(api_client: Any) -> str | None:
    leases: Any = client.CoordinationV1Api(api_client)
    return leases.read_namespaced_lease(LEASE, NAMESPACE).spec.holder_identity  # type: ignore[no-any-return]


def test_only_one_of_two_candidates_leads(api_client: Any) -> None:
    a, b = Candidate(api_client, "a"), Candidate(api_client, "b")

    assert a.elector.try_acquire_or_renew() is True
    assert b.elector.try_acquire_or_renew() is False
    assert a.elector.is_leader()
    assert not b.elector.is_leader()
    assert holder(api_client) == "a"


def test_leader_keeps_the_lease_by_renewing(api_client: Any) -> None:
    a, b = Candidate(api_client, "a"), Candidate(api_client, "b")
    a.elector.try_acquire_or_renew()
    b.elector.try_acquire_or_renew()

    for _ in range(5):
        a.clock.advance(5)
        b.clock.advance(5)
        assert a.elector.try_acquire_or_renew() is True
        assert b.elector.try_acquire_or_renew() is False

    assert holder(api_client) == "a"


def test_other_candidate_takes_over_after_the_lease_expires(api_client: Any) -> None:
    a, b = Candidate(api_client, "a"), Candidate(api_client, "b")
    a.elector.try_acquire_or_renew()
    b.elector.try_acquire_or_renew()

    b.clock.advance(14.9)
    assert b.elector.try_acquire_or_renew() is False
    b.clock.advance(0.2)
    assert b.elector.try_acquire_or_renew() is True

    assert holder(api_client) == "b"
    assert a.elector.try_acquire_or_renew() is False
    assert not a.elector.is_leader()
    leases: Any = client.CoordinationV1Api(api_client)
    assert leases.read_namespaced_lease(LEASE, NAMESPACE).spec.lease_transitions == 1


def test_unreachable_leader_fences_itself_before_the_lease_expires(
    cluster: EmbeddedCluster, api_client: Any
) -> None:
    a, b = Candidate(api_client, "a"), Candidate(api_client, "b")
    a.elector.try_acquire_or_renew()
    b.elector.try_acquire_or_renew()
    cluster.faults.fail_next(1000, 503, resource="leases")

    a.clock.advance(5)
    assert a.elector.try_acquire_or_renew() is True
    a.clock.advance(5)
    assert a.elector.try_acquire_or_renew() is False
    assert not a.elector.is_leader()

    cluster.faults.clear()
    b.clock.advance(10)
    assert b.elector.try_acquire_or_renew() is False
    b.clock.advance(5)
    assert b.elector.try_acquire_or_renew() is True


def test_losing_the_write_race_is_not_leading(cluster: EmbeddedCluster, api_client: Any) -> None:
    a = Candidate(api_client, "a")
    a.elector.try_acquire_or_renew()
    cluster.faults.fail_next(1, 409, verb="update", resource="leases")

    a.clock.advance(2)

    assert a.elector.try_acquire_or_renew() is False
    assert not a.elector.is_leader()
    assert a.elector.try_acquire_or_renew() is True


def test_stale_resource_version_loses_to_a_concurrent_renewal(api_client: Any) -> None:
    a, b = Candidate(api_client, "a"), Candidate(api_client, "b")
    a.elector.try_acquire_or_renew()
    leases: Any = client.CoordinationV1Api(api_client)
    stale = leases.read_namespaced_lease(LEASE, NAMESPACE)
    a.clock.advance(2)
    a.elector.try_acquire_or_renew()
    stale.spec.holder_identity = "b"

    with pytest.raises(client.ApiException) as raised:
        leases.replace_namespaced_lease(LEASE, NAMESPACE, stale)

    assert raised.value.status == 409
    assert b.elector.try_acquire_or_renew() is False


def test_release_hands_over_without_waiting(api_client: Any) -> None:
    a, b = Candidate(api_client, "a"), Candidate(api_client, "b")
    a.elector.try_acquire_or_renew()
    b.elector.try_acquire_or_renew()

    a.elector.release()

    assert not a.elector.is_leader()
    assert b.elector.try_acquire_or_renew() is True
    assert holder(api_client) == "b"


def test_run_calls_back_on_leadership_changes(api_client: Any) -> None:
    elector = LeaderElector(
        api_client,
        NAMESPACE,
        LEASE,
        "runner",
        lease_duration=1.0,
        renew_deadline=0.6,
        retry_period=0.05,
    )
    stop = threading.Event()
    started, stopped = threading.Event(), threading.Event()

    thread = elector.run(stop, started.set, stopped.set)
    assert started.wait(5)
    assert holder(api_client) == "runner"
    stop.set()
    thread.join(5)

    assert stopped.is_set()
    assert holder(api_client) is None


@pytest.mark.parametrize(
    ("duration", "deadline", "period"), [(10, 10, 2), (15, 10, 10), (15, 10, 0)]
)
def test_inconsistent_timings_are_rejected(
    api_client: Any, duration: float, deadline: float, period: float
) -> None:
    with pytest.raises(LeaderElectionError):
        LeaderElector(api_client, NAMESPACE, LEASE, "x", duration, deadline, period)


def test_run_reports_lost_leadership_when_the_api_server_fails(
    cluster: EmbeddedCluster, api_client: Any
) -> None:
    elector = LeaderElector(
        api_client,
        NAMESPACE,
        LEASE,
        "runner",
        lease_duration=1.0,
        renew_deadline=0.4,
        retry_period=0.05,
    )
    stop = threading.Event()
    started, stopped = threading.Event(), threading.Event()
    thread = elector.run(stop, started.set, stopped.set)
    assert started.wait(5)

    cluster.faults.fail_next(100_000, 500, resource="leases")

    assert stopped.wait(5)
    assert not elector.is_leader()
    cluster.faults.clear()
    stop.set()
    thread.join(5)
