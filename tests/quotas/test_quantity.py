"""Kubernetes quantities: every form Kubernetes takes parses to the same base units, and
nothing else does."""

from __future__ import annotations

import pytest

from quotas.quantity import QuantityError, cpu_to_milli, format_cpu, format_memory, memory_to_bytes

CPU: list[tuple[str | int | float, int]] = [
    (8, 8000),
    ("8", 8000),
    ("+8", 8000),
    (0.5, 500),
    ("0.5", 500),
    (".5", 500),
    ("500m", 500),
    ("1e3", 1_000_000),
    ("1E3", 1_000_000),
    ("5e-1", 500),
    ("2k", 2_000_000),
]


@pytest.mark.parametrize(("quantity", "milli"), CPU, ids=[repr(q) for q, _ in CPU])
def test_cpu_forms(quantity: str | int | float, milli: int) -> None:
    assert cpu_to_milli(quantity) == milli


MEMORY: list[tuple[str | int | float, int]] = [
    (1024, 1024),
    ("1024", 1024),
    ("1Ki", 1024),
    ("90Gi", 90 * 2**30),
    ("1Ti", 2**40),
    ("1.5G", 1_500_000_000),
    ("1e9", 10**9),
    ("2E", 2 * 10**18),
    (1024.0, 1024),
]


@pytest.mark.parametrize(("quantity", "size"), MEMORY, ids=[repr(q) for q, _ in MEMORY])
def test_memory_forms(quantity: str | int | float, size: int) -> None:
    assert memory_to_bytes(quantity) == size


INVALID: list[tuple[str, object, str]] = [
    ("word", "four", "not a Kubernetes quantity"),
    ("negative", "-1", "not a Kubernetes quantity"),
    ("negative number", -1, "non-negative"),
    ("unknown suffix", "4Xi", "not a Kubernetes quantity"),
    ("finer than a millicore", "0.0001", "finer than 1m"),
    ("boolean", True, "not a quantity"),
    ("not finite", float("inf"), "non-negative"),
    ("absurd exponent", "1e999999999", "exponent out of range"),
    ("too large", "9" * 40, "too large"),
]


@pytest.mark.parametrize(("case", "quantity", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_quantities(case: str, quantity: object, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        cpu_to_milli(quantity)  # type: ignore[arg-type]


def test_fractional_bytes_are_refused() -> None:
    with pytest.raises(QuantityError, match="whole number of bytes"):
        memory_to_bytes(1.5)


def test_formatting_round_trips() -> None:
    assert format_cpu(cpu_to_milli("500m")) == "500m"
    assert format_cpu(cpu_to_milli(64)) == "64"
    assert format_memory(memory_to_bytes("1Ti")) == "1Ti"
    assert format_memory(memory_to_bytes(1000)) == "1000"
