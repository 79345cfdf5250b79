"""Small helpers shared by the simulated API server and kubelet: timestamps, quantities,
pod resource accounting and merge patches.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from k8s.sim.errors import BadRequest, Invalid

GPU_RESOURCE = "nvidia.com/gpu"
ADMITTED_RESOURCES: tuple[str, ...] = (GPU_RESOURCE, "cpu", "memory")
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

DURATION_ANNOTATION = "sim.yushan.io/duration-seconds"
EXIT_CODE_ANNOTATION = "sim.yushan.io/exit-code"
DEFAULT_DURATION_SECONDS = 60.0


def timestamp(instant: dt.datetime | None = None) -> str:
    """RFC 3339 with second precision in UTC, as ``metav1.Time`` is serialised."""
    value = instant or dt.datetime.now(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15}
_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def quantity(text: object) -> Decimal:
    """Parse a Kubernetes quantity (``"96"``, ``"500m"``, ``"1440Gi"``, ``"1e3"``)."""
    match = _QUANTITY_RE.match(str(text).strip())
    if not match:
        raise BadRequest(f"invalid quantity {text!r}")
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation as error:
        raise BadRequest(f"invalid quantity {text!r}") from error
    if suffix in _BINARY_SUFFIXES:
        return value * (Decimal(1024) ** _BINARY_SUFFIXES[suffix])
    if suffix in _DECIMAL_SUFFIXES:
        return value.scaleb(_DECIMAL_SUFFIXES[suffix])
    raise BadRequest(f"invalid quantity suffix in {text!r}")


def container_demand(container: Mapping[str, Any]) -> dict[str, Decimal]:
    """What the kubelet reserves for one container: requests, defaulting to limits.

    Extended resources such as ``nvidia.com/gpu`` are set through limits, and a request
    without a limit is not allowed for them, so limits are their source of truth.
    """
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    demand: dict[str, Decimal] = {}
    for name in ADMITTED_RESOURCES:
        raw = requests.get(name, limits.get(name))
        if name == GPU_RESOURCE:
            raw = limits.get(name, raw)
        if raw is not None:
            demand[name] = quantity(raw)
    return demand


def pod_demand(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    total = dict.fromkeys(ADMITTED_RESOURCES, Decimal(0))
    for container in pod.get("spec", {}).get("containers") or []:
        for name, amount in container_demand(container).items():
            total[name] += amount
    return total


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; also used for strategic merge patches of simple fields."""
    if not isinstance(patch, Mapping):
        return patch
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def format_quantity(value: Decimal) -> str:
    """Render a whole quantity without exponent (``8``), or with millis for fractions."""
    if value == value.to_integral_value():
        return str(int(value))
    return f"{int(value * 1000)}m"


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch with ``add``, ``remove``, ``replace`` and ``test`` operations."""
    if not isinstance(operations, list):
        raise BadRequest("a JSON patch must be a list of operations")
    document = copy.deepcopy(target)
    for operation in operations:
        try:
            document = _apply_operation(document, operation)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise Invalid(f"the JSON patch operation {operation} cannot be applied") from error
    return document


def _apply_operation(document: Any, operation: Mapping[str, Any]) -> Any:
    op = operation["op"]
    tokens = [
        token.replace("~1", "/").replace("~0", "~")
        for token in str(operation["path"]).split("/")[1:]
    ]
    if not tokens:
        if op in ("add", "replace"):
            return copy.deepcopy(operation["value"])
        raise ValueError(f"unsupported whole-document {op}")
    parent = document
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    last = tokens[-1]
    if op == "test":
        current = parent[int(last)] if isinstance(parent, list) else parent[last]
        if current != operation["value"]:
            raise ValueError("test failed")
    elif op == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    elif op in ("add", "replace") and isinstance(parent, list):
        value = copy.deepcopy(operation["value"])
        if last == "-":
            parent.append(value)
        elif op == "add":
            parent.insert(int(last), value)
        else:
            parent[int(last)] = value
    elif op in ("add", "replace"):
        if op == "replace" and last not in parent:
            raise KeyError(last)
        parent[last] = copy.deepcopy(operation["value"])
    else:
        raise ValueError(f"unsupported operation {op}")
    return document
