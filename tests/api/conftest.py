"""An in-process API (FastAPI TestClient) on a real database, with a bootstrap admin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app, prepare_database
from api.settings import ApiSettings
from tests.api.builders import ApiDriver

ADMIN_TOKEN = "ysh_bootstrap_test_token_0123456789abcdef"


@pytest.fixture
def client(database_url: str, engine: Engine) -> Iterator[TestClient]:
    settings = ApiSettings(database_url=database_url, bootstrap_token=ADMIN_TOKEN)
    prepare_database(settings, engine)
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient) -> ApiDriver:
    return ApiDriver(client, ADMIN_TOKEN)
