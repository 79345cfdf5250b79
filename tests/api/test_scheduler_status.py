"""``GET /v1/scheduler``: the heartbeat of the leading scheduler, as ``yushan doctor`` reads it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from store import heartbeat
from store.db import session_factory, transaction
from tests.api.builders import ApiDriver


def _beat(engine: Engine, seconds_ago: float, interval: float = 15.0) -> None:
    with transaction(session_factory(engine)) as session:
        at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
        heartbeat.beat(session, "pod-1", at, interval_seconds=interval, create_namespaces=False)


def test_no_scheduler_ever_cycled(api: ApiDriver) -> None:
    status = api.ok(api.get("/v1/scheduler"))
    assert status == {
        "alive": False,
        "leader": None,
        "last_cycle_at": None,
        "seconds_since_last_cycle": None,
        "interval_seconds": None,
        "create_tenant_namespaces": None,
    }


@pytest.mark.parametrize(
    ("seconds_ago", "interval", "alive"),
    [(2, 15.0, True), (44, 15.0, True), (59, 1.0, True), (61, 1.0, False), (50, 20.0, True)],
)
def test_alive_while_the_last_cycle_is_younger_than_three_intervals_or_a_minute(
    api: ApiDriver, engine: Engine, seconds_ago: float, interval: float, alive: bool
) -> None:
    _beat(engine, seconds_ago, interval)
    status = api.ok(api.get("/v1/scheduler"))
    assert status["alive"] is alive
    assert (status["leader"], status["create_tenant_namespaces"]) == ("pod-1", False)
    assert status["seconds_since_last_cycle"] == pytest.approx(seconds_ago, abs=2)
