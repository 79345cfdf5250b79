"""Credits as exact integers, and the charge of an interval.

Money is never a float: amounts are integer **micro-credits** (1 credit = 1 000 000), parsed
from and shown as decimal strings (``"4.305"``; at most 6 decimals accepted, 3 shown unless more
are needed). A price is per hour; usage is charged per millisecond of run time.

**Rounding rule.** The exact cost of an interval is
``ms x (gpus x gpu_hour + cores x cpu_hour + GiB x memory_gib_hour) / 3 600 000`` micro-credits.
Each interval charges the whole micro-credits of (its exact cost + the remainder carried from
the attempt's previous interval) and carries the rest on. So an attempt's total charge is its
exact cost rounded *down* to the micro-credit, however many intervals it was accrued in
(TWCC's example: 189 s at 82 credits/hour = 82 x 189 / 3600 = 4.305 credits exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MICRO = 1_000_000
"""Micro-credits per credit."""
MAX_CREDITS = 10**12
"""The largest amount accepted from a caller (a trillion credits)."""
_MS_PER_HOUR = 3_600_000
_GIB = 2**30
DENOMINATOR = _MS_PER_HOUR * 1000 * _GIB
"""The common denominator of one interval's exact cost: hours in ms x millicores per core x
bytes per GiB. A carried remainder is below it (fits a 64-bit column)."""


def parse_credits(value: str | int | float | Decimal, *, field: str = "amount") -> int:
    """Credits given as a decimal string or number, in micro-credits; ``ValueError`` naming
    ``field`` when it is not a number with at most 6 decimals within +-:data:`MAX_CREDITS`."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as error:
        raise ValueError(f"{field}: {value!r} is not a number of credits") from error
    if not amount.is_finite():
        raise ValueError(f"{field}: {value!r} is not a number of credits")
    micro = amount * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"{field}: at most 6 decimals (micro-credits), got {value!r}")
    if abs(amount) > MAX_CREDITS:
        raise ValueError(f"{field}: at most {MAX_CREDITS} credits")
    return int(micro)


def format_credits(micro: int) -> str:
    """``4305000`` -> ``"4.305"``: 3 decimals, more only when the amount has them."""
    sign = "-" if micro < 0 else ""
    whole, fraction = divmod(abs(micro), MICRO)
    digits = f"{fraction:06d}".rstrip("0")
    return f"{sign}{whole}.{digits.ljust(3, '0')}"


@dataclass(frozen=True, slots=True)
class Rate:
    """Hourly prices in micro-credits (per GPU, per CPU core, per GiB of memory)."""

    gpu_hour: int = 0
    cpu_hour: int = 0
    memory_gib_hour: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """What a job attempt holds while it runs (all workers together)."""

    gpus: int
    cpu_milli: int
    memory_bytes: int


def rate_numerator(rate: Rate, usage: Usage) -> int:
    """Cost of one millisecond, over :data:`DENOMINATOR`."""
    return (
        rate.gpu_hour * usage.gpus * 1000 * _GIB
        + rate.cpu_hour * usage.cpu_milli * _GIB
        + rate.memory_gib_hour * usage.memory_bytes * 1000
    )


def charge(rate: Rate, usage: Usage, milliseconds: int, carry: int = 0) -> tuple[int, int]:
    """The whole micro-credits an interval charges and the remainder to carry on."""
    return divmod(rate_numerator(rate, usage) * milliseconds + carry, DENOMINATOR)
