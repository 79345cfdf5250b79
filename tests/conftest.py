"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, and an in-process API.

Store and API tests take the ``database_url`` fixture, which is parametrized over both
backends. PostgreSQL is the server at ``YUSHAN_TEST_POSTGRES_URL`` (default: the local one);
each pytest-xdist worker gets its own schema so workers never see each other's rows. PostgreSQL
tests never skip: if the server is unreachable they fail, which is what CI needs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from store.db import create_db_engine
from store.migrate import upgrade
from store.models import Base

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgres"]


def postgres_base_url() -> str:
    return os.environ.get("YUSHAN_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_schema_url(schema: str) -> str:
    base = make_url(postgres_base_url())
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def migrated_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One migrated database per backend for this worker (the PostgreSQL schema is dropped
    at the end of the session)."""
    sqlite_path = tmp_path_factory.mktemp("db") / "yushan.db"
    schema = f"yushan_test_{_worker_id()}_{uuid.uuid4().hex[:6]}"
    urls = {"sqlite": f"sqlite:///{sqlite_path}", "postgres": _postgres_schema_url(schema)}
    for url in urls.values():
        upgrade(url)
    yield urls
    admin = create_engine(make_url(postgres_base_url()))
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def truncate_all(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            connection.execute(text("UPDATE cohorts SET parent = NULL"))
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, migrated_urls: dict[str, str]) -> str:
    """A migrated, empty database on each backend."""
    url = migrated_urls[request.param]
    engine = create_db_engine(url)
    truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'yushan.db'}"
