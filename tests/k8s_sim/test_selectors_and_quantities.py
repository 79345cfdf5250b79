"""Selector parsing, quantities and merge patches, without a server."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from k8s.sim.errors import BadRequest, Invalid
from k8s.sim.objects import json_patch, merge_patch, quantity
from k8s.sim.selectors import parse_field_selector, parse_label_selector

POD = {
    "metadata": {"name": "p", "namespace": "lab", "labels": {"team": "x", "tier": "gpu"}},
    "spec": {"nodeName": "h100-0"},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("team=x", True),
        ("team==y", False),
        ("team!=y", True),
        ("team in (x, z)", True),
        ("team notin (x)", False),
        ("tier", True),
        ("!tier", False),
        ("team=x,tier in (cpu)", False),
    ],
)
def test_label_selector(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector)(POD) is expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("spec.nodeName=h100-0", True),
        ("spec.nodeName=", False),
        ("status.phase!=Succeeded", True),
        ("metadata.name=p,metadata.namespace=lab", True),
        ("spec.missing=", True),
    ],
)
def test_field_selector(selector: str, expected: bool) -> None:
    assert parse_field_selector(selector)(POD) is expected


@pytest.mark.parametrize("selector", ["team in x", "=x"])
def test_malformed_selectors_are_bad_requests(selector: str) -> None:
    with pytest.raises(BadRequest):
        parse_label_selector(selector)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", Decimal(8)),
        ("500m", Decimal("0.5")),
        ("1440Gi", Decimal(1440 * 1024**3)),
        ("2k", Decimal(2000)),
        ("1e3", Decimal(1000)),
    ],
)
def test_quantity(text: str, value: Decimal) -> None:
    assert quantity(text) == value


@pytest.mark.parametrize("text", ["lots", "5Qi", ""])
def test_bad_quantity(text: str) -> None:
    with pytest.raises(BadRequest):
        quantity(text)


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}}, {"a": 1, "b": {"c": 2, "d": 3}}),
        ({"a": 1, "b": 2}, {"b": None}, {"a": 1}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ],
)
def test_merge_patch(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


@pytest.mark.parametrize(
    ("operations", "expected"),
    [
        ([{"op": "add", "path": "/b/c", "value": 2}], {"a": [1], "b": {"c": 2}}),
        ([{"op": "add", "path": "/a/-", "value": 2}], {"a": [1, 2], "b": {}}),
        ([{"op": "replace", "path": "/a/0", "value": 5}], {"a": [5], "b": {}}),
        ([{"op": "remove", "path": "/b"}], {"a": [1]}),
        (
            [
                {"op": "test", "path": "/a/0", "value": 1},
                {"op": "add", "path": "/x~1y", "value": 0},
            ],
            {"a": [1], "b": {}, "x/y": 0},
        ),
    ],
)
def test_json_patch(operations: Any, expected: Any) -> None:
    assert json_patch({"a": [1], "b": {}}, operations) == expected


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "test", "path": "/a/0", "value": 2}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "move", "from": "/a", "path": "/b"}],
    ],
)
def test_failing_json_patch_is_invalid(operations: Any) -> None:
    with pytest.raises(Invalid):
        json_patch({"a": [1], "b": {}}, operations)
