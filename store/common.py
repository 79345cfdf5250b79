"""Small helpers shared by the store's operation modules: clock, ids, cursors."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored datetime is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def new_job_id() -> str:
    """``j`` + 9 random characters: a valid DNS label, so it names pods and services directly."""
    return "j" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))


def new_array_id() -> str:
    """``a`` + 9 random characters: the parent id shared by the tasks of a job array."""
    return "a" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))


MAX_SEQ = 2**31 - 1
"""Sequence numbers and audit ids are 32-bit integer columns; a cursor beyond is invalid."""


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        prefix, _, value = text.partition(":")
        if prefix != "s" or not value.isascii() or not value.isdigit():
            raise ValueError(cursor)
        seq = int(value)
        if seq > MAX_SEQ:
            raise ValueError(cursor)
        return seq
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError("invalid cursor") from error
