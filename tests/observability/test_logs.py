"""Structured JSON logs carry the request id, tenant and job id of the work in progress."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from scheduler.logs import configure_logging, current_context, log_context


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Route logging to a buffer, and restore the root logger afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    configure_logging("DEBUG", json=True, stream=buffer)
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_log_line_is_json_with_the_context_fields(stream: io.StringIO) -> None:
    with log_context(request_id="req-1", tenant="lab-a", job_id="job-7"):
        logging.getLogger("api.jobs").info("job %s created", "job-7")

    (entry,) = lines(stream)
    assert entry["message"] == "job job-7 created"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "api.jobs"
    assert entry["ts"].endswith("Z")
    assert (entry["request_id"], entry["tenant"], entry["job_id"]) == ("req-1", "lab-a", "job-7")


def test_contexts_nest_and_are_restored(stream: io.StringIO) -> None:
    log = logging.getLogger("scheduler")
    with log_context(request_id="req-1", tenant="lab-a"):
        with log_context(job_id="job-1", tenant=None):
            log.info("inner")
        log.info("outer")
    log.info("outside")

    inner, outer, outside = lines(stream)
    assert inner["job_id"] == "job-1"
    assert inner["tenant"] == "lab-a"
    assert "job_id" not in outer
    assert outer["request_id"] == "req-1"
    assert not {"request_id", "tenant", "job_id"} & set(outside)
    assert current_context() == {}


def test_context_does_not_leak_between_threads(stream: io.StringIO) -> None:
    def other_thread() -> None:
        logging.getLogger("worker").info("elsewhere")

    with log_context(request_id="req-9"):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()

    (entry,) = lines(stream)
    assert "request_id" not in entry


def test_extra_fields_and_exceptions_are_included(stream: io.StringIO) -> None:
    with log_context(tenant="lab-a"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("scheduler").exception("dispatch failed", extra={"attempt": 3})

    (entry,) = lines(stream)
    assert entry["attempt"] == 3
    assert entry["level"] == "ERROR"
    assert "RuntimeError: boom" in entry["exc_info"]


def test_text_format_appends_the_context() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    try:
        configure_logging("info", json=False, stream=buffer)
        with log_context(tenant="lab-b"):
            logging.getLogger("cli").info("hello")
            logging.getLogger("cli").debug("filtered out by the level")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]

    (line,) = buffer.getvalue().splitlines()
    assert line.endswith("INFO cli: hello tenant=lab-b")
