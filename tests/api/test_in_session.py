"""``api.deps.in_read_session``: the hot read routes' one trip to a worker thread, in
autocommit mode (no BEGIN and COMMIT), on a pool whose connections are transactional again
once returned."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import Request
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api.deps import in_read_session
from store import tenants
from store.db import create_db_engine, read_session_factory, session_factory, transaction
from store.models import Flavor


def request_for(engine: Engine) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(read_session_factory=read_session_factory(engine)))
    return cast(Request, SimpleNamespace(app=app))


def flavors(engine: Engine) -> list[str]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(Flavor.name)))


def create_flavor(engine: Engine, name: str) -> None:
    with transaction(session_factory(engine)) as session:
        tenants.create_flavor(session, name, {}, 4000, 2**30)


def test_work_reads_in_a_worker_thread(engine: Engine) -> None:
    create_flavor(engine, "h100")
    threads: list[Any] = []

    def work(session: Session) -> list[str]:
        threads.append(threading.current_thread())
        return list(session.scalars(select(Flavor.name)))

    assert asyncio.run(in_read_session(request_for(engine), work)) == ["h100"]
    assert threads != [threading.main_thread()]


def test_each_statement_is_its_own_transaction(engine: Engine) -> None:
    """Autocommit: what a statement wrote is stored before the work ends, so the work must
    only read (a write would not be rolled back)."""
    seen: list[list[str]] = []

    def work(session: Session) -> None:
        tenants.create_flavor(session, "h100", {}, 4000, 2**30)
        session.flush()
        seen.append(flavors(engine))
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        asyncio.run(in_read_session(request_for(engine), work))
    assert seen == [["h100"]]
    assert flavors(engine) == ["h100"]


def test_the_pool_is_transactional_again_after_a_read(database_url: str) -> None:
    """One pooled connection, read in autocommit mode, then written in a transaction that
    fails: nothing of the failed transaction is left."""
    engine = create_db_engine(database_url, pool_size=1)
    try:
        asyncio.run(in_read_session(request_for(engine), lambda s: s.scalars(select(Flavor))))
        with pytest.raises(ValueError, match="refused"):
            write_then_fail(engine)
        assert flavors(engine) == []
    finally:
        engine.dispose()


def write_then_fail(engine: Engine) -> None:
    with transaction(session_factory(engine)) as session:
        tenants.create_flavor(session, "h100", {}, 4000, 2**30)
        session.flush()
        raise ValueError("refused")
