"""``GET /v1/jobs`` writes its page straight from the rows (``api.convert.job_page_json``):
the bytes must be those of ``JobPageOut(...).model_dump_json()`` over the validated models, for
jobs with every optional field set and unset, on each backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from api.convert import JOB_LIST_COLUMNS, job_out, job_page_json
from api.routers.jobs import job_rows
from api.schemas import JobOut, JobPageOut
from store import tenants
from store.db import SessionFactory, read_session_factory, session_factory, transaction
from store.models import Job
from store.users import Principal

ADMIN = Principal(user="root", is_admin=True, roles={}, token_id="0")
MEMBER = Principal(user="alice", is_admin=False, roles={"lab-a": "member"}, token_id="1")
AT = datetime(2026, 12, 1, 9, 30, 15, 123456)

UNSET: dict[str, Any] = {}
"""A queued job as submitted: every optional field null, every collection empty."""
EVERY_FIELD_SET: dict[str, Any] = {
    "command": ["python", "train.py", "--lr", "0.1"],
    "args": ["--epochs", "3"],
    "env": {"LR": "0.1", "EMPTY": ""},
    "annotations": {"team.example.com/owner": "alice"},
    "max_runtime_seconds": 86400,
    "checkpoint_interval_seconds": 600,
    "status": "succeeded",
    "reason": "Completed",
    "queue_position": 3,
    "attempts": 2,
    "exit_code": 0,
    "placement": ["node-a", "node-b"],
    "admitted_at": datetime(2026, 12, 1, 9, 31),
    "started_at": datetime(2026, 12, 1, 9, 32, 0, 1),
    "finished_at": datetime(2026, 12, 1, 9, 33, 59, 999999),
    "held": True,
    "depends_on": [{"job": "j0000000000000a", "condition": "succeeded"}],
    "array_id": "a000000000000001",
    "array_index": 7,
    "array_parallelism": 2,
    "estimated_start": datetime(2027, 1, 1),
    "estimate_is_bound": True,
}
CASES: dict[str, dict[str, Any]] = {
    "unset": UNSET,
    "every field set": EVERY_FIELD_SET,
    "unicode and escapes": {
        "message": 'été ✓ 日本語 😀 "quoted" back\\slash\nnew line\ttab \u2028 </script>',
        "env": {"NOTE": "été 😀", "JSON": '{"a": [1, "b"]}', "CTRL": "\x01\x1f\x7f"},
        "command": ["echo", "ünïcödé", ""],
        "annotations": {"note": "\u00a0non-breaking\u200b"},
    },
    "empty placement and negative exit code": {
        "placement": [],
        "exit_code": -9,
        "status": "failed",
        "max_runtime_seconds": 0,
        "queue_position": 0,
    },
    "quantities": {"gpus": 0, "workers": 512, "cpu_milli": 500, "memory_bytes": 1 << 50},
    "whole-second datetimes": {
        "created_at": datetime(2026, 1, 2, 3, 4, 5),
        "started_at": datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
    },
}


def job_row(index: int, values: dict[str, Any]) -> Job:
    base: dict[str, Any] = {
        "id": f"j{index:015d}",
        "tenant": "lab-a",
        "user": "alice",
        "name": f"job-{index}",
        "image": "pytorch:2.5",
        "command": [],
        "args": [],
        "env": {},
        "flavor": "h100",
        "gpus": 1,
        "workers": 1,
        "cpu_milli": 4000,
        "memory_bytes": 96 * 2**30,
        "priority": "normal",
        "annotations": {},
        "status": "queued",
        "reason": "Submitted",
        "message": "waiting for the next scheduling cycle",
        "created_at": AT,
    }
    return Job(**{**base, **values})


@pytest.fixture
def stored(engine: Engine) -> SessionFactory:
    """One job of each case (newest last), in tenant lab-a; lab-b has none."""
    with transaction(session_factory(engine)) as session:
        tenants.create_flavor(session, "h100", {}, 4000, 2**30)
        tenants.create_tenant(session, "lab-a", "academic", None, 1.0, "yushan-lab-a")
        tenants.create_tenant(session, "lab-b", "academic", None, 1.0, "yushan-lab-b")
        session.flush()
        session.add_all(job_row(i, values) for i, values in enumerate(CASES.values()))
    return read_session_factory(engine)


def both(sessions: SessionFactory, principal: Principal, **query: Any) -> tuple[bytes, bytes]:
    """The fast path's bytes and the models' for the same page."""
    with sessions() as session:
        page = job_rows(session, principal, **query)
        fast = job_page_json(page)
        items = [job_out(row) for row in page.items]
        models = JobPageOut(items=items, next_cursor=page.next_cursor).model_dump_json().encode()
    return fast, models


@pytest.mark.parametrize("case", list(CASES))
def test_each_case_alone_is_byte_identical(stored: SessionFactory, case: str) -> None:
    """A page of that one job: newest first, so the last case is at position 1."""
    index = list(CASES).index(case)
    cursor = _cursor_before(stored, len(CASES) - index)
    fast, models = both(stored, ADMIN, limit=1, cursor=cursor)
    assert fast == models
    assert f'"id":"j{index:015d}"'.encode() in fast


def _cursor_before(sessions: SessionFactory, position: int) -> str | None:
    """The cursor after the ``position - 1`` newest jobs (None for the newest)."""
    if position == 1:
        return None
    with sessions() as session:
        return job_rows(session, ADMIN, limit=position - 1).next_cursor


@pytest.mark.parametrize(
    ("principal", "query"),
    [
        (ADMIN, {}),
        (MEMBER, {"limit": 2}),
        (MEMBER, {"tenant": "lab-a", "limit": 500}),
        (ADMIN, {"tenant": "lab-b"}),
    ],
    ids=["every job", "first page with a cursor", "member's tenant", "empty page"],
)
def test_pages_are_byte_identical(
    stored: SessionFactory, principal: Principal, query: dict[str, Any]
) -> None:
    fast, models = both(stored, principal, **query)
    assert fast == models


def test_the_page_reads_the_body_s_columns_in_its_order() -> None:
    """Every field of a job's body but the detail-only ones comes from a column, in order."""
    fields = [name for name in JobOut.model_fields if name not in ("cost", "max_cost")]
    renamed = {"cpu_milli": "cpu", "memory_bytes": "memory"}
    assert [renamed.get(c, c) for c in JOB_LIST_COLUMNS] == fields
