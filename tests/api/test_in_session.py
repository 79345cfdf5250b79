"""``api.deps.in_session``: the hot read routes' one trip to a worker thread keeps
``SessionDep``'s promise: the work commits when it returns and rolls back when it raises."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import Request
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api.deps import in_session
from store import tenants
from store.db import session_factory
from store.models import Flavor


def request_for(engine: Engine) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(session_factory=session_factory(engine)))
    return cast(Request, SimpleNamespace(app=app))


def flavors(engine: Engine) -> list[str]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(Flavor.name)))


def test_work_commits_in_a_worker_thread(engine: Engine) -> None:
    threads: list[Any] = []

    def work(session: Session) -> str:
        threads.append(threading.current_thread())
        tenants.create_flavor(session, "h100", {}, 4000, 2**30)
        return "done"

    assert asyncio.run(in_session(request_for(engine), work)) == "done"
    assert threads != [threading.main_thread()]
    assert flavors(engine) == ["h100"]


def test_work_that_raises_leaves_nothing(engine: Engine) -> None:
    def work(session: Session) -> None:
        tenants.create_flavor(session, "h100", {}, 4000, 2**30)
        session.flush()
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        asyncio.run(in_session(request_for(engine), work))
    assert flavors(engine) == []
