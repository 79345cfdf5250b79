"""Kubernetes resource quantities ("500m", "4", "90Gi", "1.5G") to and from integer base units.

CPU is kept in millicores and memory in bytes. Parsing is exact (``Decimal``) and rejects
anything Kubernetes itself would reject, so that what a user submits is what the pod requests.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^\+?(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>[a-zA-Z]{0,2})$")


class QuantityError(ValueError):
    """A string that is not a valid Kubernetes quantity."""


def parse_quantity(text: str | int | float) -> Decimal:
    """The value of a quantity in its base unit (cores for CPU, bytes for memory)."""
    if isinstance(text, bool):
        raise QuantityError(f"not a quantity: {text!r}")
    if isinstance(text, int | float):
        value = Decimal(str(text))
        if value < 0 or not value.is_finite():
            raise QuantityError(f"quantity must be a non-negative number: {text!r}")
        return value
    match = _QUANTITY.match(text.strip())
    if match is None or match["suffix"] not in _SUFFIXES:
        raise QuantityError(f"not a Kubernetes quantity: {text!r} (examples: 500m, 4, 90Gi)")
    try:
        return Decimal(match["number"]) * _SUFFIXES[match["suffix"]]
    except InvalidOperation as error:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"not a Kubernetes quantity: {text!r}") from error


def cpu_to_milli(text: str | int | float) -> int:
    milli = parse_quantity(text) * 1000
    if milli != milli.to_integral_value():
        raise QuantityError(f"CPU quantity finer than 1m: {text!r}")
    return int(milli)


def memory_to_bytes(text: str | int | float) -> int:
    value = parse_quantity(text)
    if value != value.to_integral_value():
        raise QuantityError(f"memory quantity is not a whole number of bytes: {text!r}")
    return int(value)


def format_cpu(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def format_memory(num_bytes: int) -> str:
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIXES[suffix])
        if num_bytes and num_bytes % unit == 0:
            return f"{num_bytes // unit}{suffix}"
    return str(num_bytes)
