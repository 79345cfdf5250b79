"""Shared fixtures of the store tests: one flavor (h100), one tenant (lab-a, 8 GPUs) and one
user (alice), on each backend (through the ``engine`` fixture)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from store import jobs, tenants, users
from store.db import SessionFactory, session_factory, transaction
from store.tenants import TENANT, Limits

REQUEST = jobs.JobRequest(tenant="lab-a", name="train", image="pytorch", flavor="h100", gpus=1)


@pytest.fixture
def sessions(engine: Engine) -> SessionFactory:
    factory = session_factory(engine)
    with transaction(factory) as session:
        tenants.create_flavor(session, "h100", {}, 4000, 2**30)
        tenants.create_tenant(session, "lab-a", "academic", None, 1.0, "yushan-lab-a")
        tenants.set_quota(session, TENANT, "lab-a", {"h100": {"gpu": Limits(8)}})
        users.create_user(session, "alice")
    return factory
