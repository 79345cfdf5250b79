"""The CLI against the real API in-process (the API's own fixtures), with a clean environment.

The CLI only speaks HTTP, so one database backend is enough here: ``database_url`` is narrowed
to SQLite (the API tests cover PostgreSQL).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from store.db import create_db_engine
from tests.api import conftest as api_fixtures
from tests.api.builders import ApiDriver
from tests.cli.driver import CliDriver
from tests.conftest import truncate_all

# The API's fixtures, re-exported so pytest finds them here: the real app on a real database.
client = api_fixtures.client
api = api_fixtures.api


@pytest.fixture
def database_url(migrated_urls: dict[str, str]) -> str:
    url = migrated_urls["sqlite"]
    engine = create_db_engine(url)
    truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No YUSHAN_* from the developer's shell; the config file lives in this test's tmp dir."""
    for name in ("YUSHAN_URL", "YUSHAN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config" / "yushan.yaml"
    monkeypatch.setenv("YUSHAN_CONFIG", str(config))
    return config


@pytest.fixture
def admin_cli(client: TestClient, capsys: pytest.CaptureFixture[str]) -> CliDriver:
    return CliDriver(client, capsys, api_fixtures.ADMIN_TOKEN)


@pytest.fixture
def platform(api: ApiDriver) -> ApiDriver:
    """Cohort, an h100 flavor and tenants lab-a and lab-b with 16 GPUs each."""
    api.setup_platform()
    return api


@pytest.fixture
def alice(platform: ApiDriver, admin_cli: CliDriver) -> CliDriver:
    """A member of lab-a."""
    return admin_cli.as_token(platform.user_with_token("alice", "lab-a").token)
