"""Kubernetes resource quantities ("500m", "4", "90Gi", "1.5G", "1e3", 64) to and from integer
base units.

CPU is kept in millicores and memory in bytes. Parsing is exact (``Decimal``) and rejects
anything Kubernetes itself would reject, so that what a user submits is what the pod requests.
Like Kubernetes (and ``kubectl``), a plain JSON/YAML number is a quantity too: ``cpu: 8`` is
``cpu: "8"`` and ``memory: 1024`` is 1024 bytes. Exponents (``1e3``) are accepted as Kubernetes
accepts them; values beyond :data:`MAX_QUANTITY` are refused before any conversion, so an
absurd exponent costs nothing.
"""

from __future__ import annotations

import re
from decimal import Decimal

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
_QUANTITY = re.compile(
    r"^\+?(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"((?P<exponent>[eE][-+]?[0-9]+)|(?P<suffix>[a-zA-Z]{0,2}))$"
)
MAX_QUANTITY = Decimal(10) ** 24
"""Far above any real request or quota (1Ei is about 1.15e18): larger values are refused."""


class QuantityError(ValueError):
    """A string that is not a valid Kubernetes quantity."""


def parse_quantity(text: str | int | float) -> Decimal:
    """The value of a quantity in its base unit (cores for CPU, bytes for memory)."""
    if isinstance(text, bool):
        raise QuantityError(f"not a quantity: {text!r}")
    if isinstance(text, int | float):
        value = Decimal(str(text))
        if not value.is_finite() or value < 0:
            raise QuantityError(f"quantity must be a non-negative number: {text!r}")
        return _bounded(value, text)
    match = _QUANTITY.match(text.strip())
    if match is None or (match["exponent"] is None and match["suffix"] not in _SUFFIXES):
        raise QuantityError(f"not a Kubernetes quantity: {text!r} (examples: 500m, 4, 90Gi, 1e3)")
    number = Decimal(match["number"])
    if match["exponent"] is not None:
        exponent = int(match["exponent"][1:])
        if abs(exponent) > 30:
            raise QuantityError(f"quantity exponent out of range: {text!r}")
        return _bounded(number.scaleb(exponent), text)
    return _bounded(number * _SUFFIXES[match["suffix"]], text)


def _bounded(value: Decimal, text: str | int | float) -> Decimal:
    if value > MAX_QUANTITY:
        raise QuantityError(f"quantity too large: {text!r}")
    return value


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
