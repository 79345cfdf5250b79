"""Rendering: aligned tables for people, the raw API objects as JSON or YAML for scripts.

Commands hand :meth:`Output.emit` the API's own objects together with a function that turns
them into text for a person. ``-o json`` and ``-o yaml`` bypass that function, so scripts see
exactly what the server returned (a listing is a list). Tables use no dependency: columns are
padded to their widest cell, times are shown relative to now ("5m ago", "in 3d").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import yaml

from cli.errors import CliError

Format = Literal["table", "wide", "json", "yaml"]
FORMATS: tuple[Format, ...] = ("table", "wide", "json", "yaml")
"""``wide``: the table with every column (``tenants queue``: every ordering factor)."""
NONE = "-"
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def short_duration(seconds: float) -> str:
    """The largest whole unit: ``42s``, ``5m``, ``3h``, ``12d``."""
    whole = int(abs(seconds))
    for suffix, size in _UNITS:
        if whole >= size:
            return f"{whole // size}{suffix}"
    return "0s"


def duration(seconds: float | None) -> str:
    """Up to two units, for durations people set or wait: ``45s``, ``1h 30m``, ``2d``, ``-``."""
    if seconds is None:
        return NONE
    whole = int(abs(seconds))
    parts: list[str] = []
    for suffix, size in _UNITS:
        if whole >= size and len(parts) < 2:
            parts.append(f"{whole // size}{suffix}")
            whole %= size
        elif parts:
            break
    return " ".join(parts) or "0s"


def gpu_hours(gpu_seconds: float | None) -> str:
    """GPU-seconds as ``12 GPU-h`` (``0.25 GPU-h`` below ten, ``0 GPU-h`` below 0.005)."""
    if gpu_seconds is None:
        return NONE
    hours = gpu_seconds / 3600
    if abs(hours) >= 10:
        return f"{hours:,.0f} GPU-h"
    return f"{(f'{hours:.2f}'.rstrip('0').rstrip('.') or '0').replace('-0', '0')} GPU-h"


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value:.0%}" if value >= 0.1 else f"{value:.1%}"


def truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def relative_time(value: str | None, now: datetime) -> str:
    """``5m ago`` for the past, ``in 3d`` for the future, ``-`` for no time at all."""
    if not value:
        return NONE
    delta = (now - parse_time(value)).total_seconds()
    if abs(delta) < 1:
        return "now"
    span = short_duration(delta)
    return f"{span} ago" if delta > 0 else f"in {span}"


def age(value: str | None, now: datetime) -> str:
    """Time since ``value`` as a bare duration, the way ``kubectl`` shows AGE."""
    return NONE if not value else short_duration((now - parse_time(value)).total_seconds())


def cell(value: Any) -> str:
    """One cell: nothing is ``-``, booleans yes/no, floats 4 digits, lists comma-joined."""
    if value is None or value in ("", [], {}):
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 10_000 else f"{value:.0f}"
    if isinstance(value, list):
        return ",".join(cell(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={cell(item)}" for key, item in value.items())
    return str(value)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    text_rows = [[cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in text_rows:
        widths = [max(width, len(text)) for width, text in zip(widths, row, strict=True)]
    lines = [headers, *text_rows]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def format_fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """A ``Label:  value`` block, labels aligned; for showing one object."""
    items = [(f"{label}:", cell(value)) for label, value in pairs]
    width = max((len(label) for label, _ in items), default=0)
    return "\n".join(f"{label.ljust(width)}  {value}".rstrip() for label, value in items)


def dump(value: Any, fmt: Format) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip("\n")
    return json.dumps(value, indent=2, ensure_ascii=False)


@dataclass
class Output:
    """Where a command's results (stdout) and notes and errors (stderr) go, and in what form."""

    fmt: Format
    stdout: TextIO
    stderr: TextIO
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def structured(self) -> bool:
        return self.fmt in ("json", "yaml")

    @property
    def wide(self) -> bool:
        return self.fmt == "wide"

    def now(self) -> datetime:
        return self.clock()

    def emit(self, value: Any, human: Callable[[Any], str]) -> None:
        """``value`` as JSON/YAML for scripts, else ``human(value)`` as text."""
        text = dump(value, self.fmt) if self.structured else human(value)
        self.line(text)

    def line(self, text: str) -> None:
        if text:
            print(text, file=self.stdout, flush=True)

    def write(self, text: str) -> None:
        """Raw text, unbuffered (streamed logs)."""
        self.stdout.write(text)
        self.stdout.flush()

    def note(self, text: str) -> None:
        print(text, file=self.stderr, flush=True)

    def error(self, error: CliError) -> None:
        """One line per problem: ``error: FILE: field: message`` for each field the server
        named (its detail only repeats them), else ``error: message``; never both."""
        for line in error_lines(error):
            self.note(f"error: {line}")


def field_name(field: str) -> str:
    """``body.gpus`` -> ``gpus``: the name as it appears in the file the user wrote."""
    return field.removeprefix("body.") if field != "body" else ""


def error_lines(error: CliError) -> list[str]:
    prefix = f"{error.source}: " if error.source else ""
    if not error.field_errors:
        return [f"{prefix}{error.message}"]
    lines = []
    for item in error.field_errors:
        name = field_name(item.field)
        lines.append(f"{prefix}{name}: {item.message}" if name else f"{prefix}{item.message}")
    return lines
