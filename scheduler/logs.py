"""Structured JSON logs with request, tenant and job context.

Every process calls :func:`configure_logging` once at start-up. Code that handles a request or a
job wraps the work in :func:`log_context`; the fields it sets (``request_id``, ``tenant``,
``job_id``) live in a :class:`contextvars.ContextVar`, so they follow the work across ``await``
points and threads started with ``contextvars.copy_context`` without being passed around, and
:class:`JsonFormatter` adds them to every record logged inside the block. Fields given through
``logger.info(..., extra={...})`` are added too and win over the context.

One line per record, one JSON object per line::

    {"ts": "2026-11-26T11:05:00.123Z", "level": "INFO", "logger": "api", "message": "job created",
     "request_id": "4f1c…", "tenant": "lab-a", "job_id": "j-17"}
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, TextIO

CONTEXT_FIELDS: tuple[str, ...] = ("request_id", "tenant", "job_id")

_NO_CONTEXT: Mapping[str, str] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "yushan_log_context", default=_NO_CONTEXT
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}


def current_context() -> Mapping[str, str]:
    """The context fields in effect here."""
    return _context.get()


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add fields to every log record inside the block; ``None`` values are ignored.

    Blocks nest: inner fields are added to (and override) the outer ones, and the outer context
    is restored on exit.
    """
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context.get())
        entry.update(
            (key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES
        )
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _ContextTextFormatter(logging.Formatter):
    """Human-readable lines for development, with the context fields appended."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{key}={value}" for key, value in _context.get().items())
        return f"{line} {context}" if context else line


def _utc_timestamp(created: float) -> str:
    instant = datetime.datetime.fromtimestamp(created, tz=datetime.UTC)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(level: str, json: bool = True, stream: TextIO | None = None) -> None:
    """Send all logging to ``stream`` (stderr by default), as JSON lines unless ``json`` is false.

    Replaces the root logger's handlers, so calling it again reconfigures rather than duplicates.
    Uvicorn's loggers are made to propagate to the root so they are formatted the same way.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json
        else _ContextTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
