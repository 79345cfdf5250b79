"""JSON columns read back from the database: the engine's decoder (``store.db.json_loads``)
gives what ``json.loads`` gives, and a fresh object each time."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select

from store import jobs
from store.common import new_job_id
from store.db import SessionFactory, json_loads, transaction
from store.models import Job
from tests.store.conftest import REQUEST


@pytest.mark.parametrize(
    "text",
    ["[]", "{}", "null", '[1, 2.5, "x"]', '{"a": {"b": []}}', '"\\u00e9t\\u00e9"', "[ ]", "0"],
)
def test_decodes_as_json_loads_does(text: str) -> None:
    assert json_loads(text.encode()) == json.loads(text)
    assert json_loads(text) == json.loads(text)


def test_empty_containers_are_new_objects() -> None:
    first, second = json_loads(b"[]"), json_loads(b"[]")
    first.append(1)
    assert second == []
    mapping = json_loads(b"{}")
    mapping["a"] = 1
    assert json_loads(b"{}") == {}


def test_a_job_s_json_columns_round_trip(sessions: SessionFactory, engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        assert engine.dialect._json_deserializer is json_loads
    request = jobs.JobRequest(
        tenant="lab-a",
        name="train",
        image="pytorch",
        flavor="h100",
        gpus=1,
        command=["python", "train.py"],
        env={"LR": "0.1", "NOTE": "été"},
    )
    job_id = new_job_id()
    with transaction(sessions) as session:
        jobs.submit(session, request, user="alice", job_id=job_id)
        jobs.submit(session, REQUEST, user="alice", job_id=new_job_id())
    with sessions() as session:
        rows = session.execute(select(Job.id, Job.command, Job.env, Job.args, Job.placement))
        found = {row.id: row for row in rows}
    assert found[job_id].command == ["python", "train.py"]
    assert found[job_id].env == {"LR": "0.1", "NOTE": "été"}
    assert found[job_id].args == []
    assert found[job_id].placement is None
    other = next(row for key, row in found.items() if key != job_id)
    assert other.args == []
    assert other.env == {}
    assert other.args is not found[job_id].args
