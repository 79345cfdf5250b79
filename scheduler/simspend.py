"""What-if spend for ``yushan simulate --prices FILE``: credits per tenant under a price list.

The price file has the shape of ``PUT /v1/prices`` (YAML or JSON): ``prices`` is a list of
``{flavor, tenant_kind, gpu_hour, cpu_hour?, memory_gib_hour?}`` in credits per hour. A tenant's
kind is its ``kind`` in the quota file, else the name of its cohort when that is a kind
(``academic``, ``industry``, ``government``; the example quota files are built that way), else
``academic``. Every second a job holds its GPUs is charged (as the ledger does); the GPU time
lost to evictions is credited back at the GPU-hour price. Amounts are computed in floating
point and rounded to the micro-credit: a what-if, not a bill (the ledger's arithmetic is exact,
see :mod:`quotas.money`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from quotas.money import Rate, format_credits, parse_credits
from scheduler.simconfig import QuotaConfig, SimulationInputError

TENANT_KINDS = ("academic", "industry", "government")
PriceTable = Mapping[tuple[str, str], Rate]
"""(flavor, tenant kind) -> hourly rate in micro-credits."""


@dataclass(slots=True)
class Held:
    """Resource-seconds a tenant held on one flavor."""

    gpu_seconds: float = 0.0
    cpu_milli_seconds: float = 0.0
    memory_byte_seconds: float = 0.0


def load_prices(path: Path) -> dict[tuple[str, str], Rate]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SimulationInputError(f"cannot read {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise SimulationInputError(f"{path} is not valid YAML: {error}") from error
    return prices_from_mapping(data, str(path))


def prices_from_mapping(data: Any, source: str = "prices") -> dict[tuple[str, str], Rate]:
    if not isinstance(data, dict) or not isinstance(data.get("prices"), list):
        raise SimulationInputError(f"{source}: expected a mapping with a list 'prices'")
    table: dict[tuple[str, str], Rate] = {}
    for index, item in enumerate(data["prices"]):
        where = f"{source}: prices[{index}]"
        try:
            kind = str(item["tenant_kind"])
            rate = Rate(
                parse_credits(item["gpu_hour"], field="gpu_hour"),
                parse_credits(item.get("cpu_hour", 0), field="cpu_hour"),
                parse_credits(item.get("memory_gib_hour", 0), field="memory_gib_hour"),
            )
            key = (str(item["flavor"]), kind)
        except (KeyError, TypeError) as error:
            raise SimulationInputError(f"{where}: missing or invalid {error}") from error
        except ValueError as error:
            raise SimulationInputError(f"{where}: {error}") from error
        if kind not in TENANT_KINDS:
            raise SimulationInputError(f"{where}: tenant_kind must be one of {TENANT_KINDS}")
        if min(rate.gpu_hour, rate.cpu_hour, rate.memory_gib_hour) < 0:
            raise SimulationInputError(f"{where}: prices cannot be negative")
        table[key] = rate
    return table


def tenant_kind(quotas: QuotaConfig, tenant: str) -> str:
    explicit = quotas.kinds.get(tenant)
    if explicit:
        return explicit
    cohort = quotas.tenants[tenant].cohort if tenant in quotas.tenants else None
    return cohort if cohort in TENANT_KINDS else "academic"


def spend_per_tenant(
    held: Mapping[tuple[str, str], Held],
    lost_gpu_seconds: Mapping[str, float],
    tenant_flavor: Mapping[str, str],
    quotas: QuotaConfig,
    prices: PriceTable,
) -> dict[str, dict[str, Any]]:
    """Per tenant: kind, GPU-hours, cost, credited losses and net, credits as strings."""
    costs: dict[str, float] = {}
    gpu_seconds: dict[str, float] = {}
    for (tenant, flavor), amount in held.items():
        rate = prices.get((flavor, tenant_kind(quotas, tenant)), Rate())
        micro = (
            amount.gpu_seconds * rate.gpu_hour
            + amount.cpu_milli_seconds / 1000 * rate.cpu_hour
            + amount.memory_byte_seconds / 2**30 * rate.memory_gib_hour
        ) / 3600
        costs[tenant] = costs.get(tenant, 0.0) + micro
        gpu_seconds[tenant] = gpu_seconds.get(tenant, 0.0) + amount.gpu_seconds
    table: dict[str, dict[str, Any]] = {}
    for tenant in sorted(set(costs) | set(lost_gpu_seconds)):
        kind = tenant_kind(quotas, tenant)
        flavor = tenant_flavor.get(tenant, "")
        credited = lost_gpu_seconds.get(tenant, 0.0) * prices.get((flavor, kind), Rate()).gpu_hour
        cost, back = round(costs.get(tenant, 0.0)), round(credited / 3600)
        table[tenant] = {
            "kind": kind,
            "gpu_hours": gpu_seconds.get(tenant, 0.0) / 3600,
            "cost": format_credits(cost),
            "credited": format_credits(back),
            "net": format_credits(cost - back),
        }
    return table
