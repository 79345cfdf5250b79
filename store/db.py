"""Engine and session construction for SQLite (the embedded default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout and foreign keys on, so the API's threads and the
scheduler can share one file. PostgreSQL runs at READ COMMITTED; the job version column and
``SELECT ... FOR UPDATE`` where a read decides a write (see docs/architecture.md) keep concurrent
API processes and the scheduler from losing updates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def create_db_engine(url: str, *, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url, parsed.database)
    # A small overflow only: connections beyond the pool are closed after use, and opening a
    # PostgreSQL connection (a new backend process) costs more than the query it serves.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=4,
        pool_pre_ping=True,
        json_deserializer=json_loads,
    )


_JSON = json.JSONDecoder()
_EMPTY: dict[bytes, type[list[Any]] | type[dict[str, Any]]] = {b"[]": list, b"{}": dict}


def json_loads(data: bytes | str) -> Any:
    """``json.loads`` for JSON columns read from PostgreSQL (psycopg hands over the bytes).
    Most of a job's JSON columns hold ``[]`` or ``{}`` (a page of 50 jobs has 350 of them):
    those become a new empty list or dict at once; the rest are decoded as UTF-8 text, which
    skips ``json.loads``' encoding detection on bytes. Same values as ``json.loads``."""
    if isinstance(data, bytes):
        empty = _EMPTY.get(data)
        if empty is not None:
            return empty()
        data = data.decode()
    return _JSON.decode(data)


def _create_sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


SessionFactory = sessionmaker[Session]


def session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: Engine) -> SessionFactory:
    """Sessions for work that only reads, on the engine's pool in autocommit mode (restored
    when a connection is returned): each statement is its own transaction, which at READ
    COMMITTED sees what it would see inside one (each statement takes its own snapshot either
    way), without BEGIN and COMMIT, two of a PostgreSQL job page's four round trips (the pool's
    ping, BEGIN, the query, COMMIT)."""
    return sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any exception."""
    with factory() as session, session.begin():
        yield session
