"""Label and field selectors, parsed the way the API server parses ``labelSelector`` and
``fieldSelector`` query parameters.

Label selectors support equality (``a=b``, ``a==b``, ``a!=b``) and set-based requirements
(``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``). Field selectors support ``=``, ``==`` and
``!=`` on any dotted field path (``spec.nodeName``, ``metadata.name``, ``status.phase``,
``involvedObject.uid``...); a missing field compares as the empty string, which is how
``spec.nodeName=`` selects unbound pods.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from k8s.sim.errors import BadRequest

Predicate = Callable[[Mapping[str, Any]], bool]

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\((.*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*(\S*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([^\s!=()]+)\s*$")


def _split_requirements(selector: str) -> list[str]:
    """Split on commas that are not inside a parenthesised value set."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _label_requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_RE.match(text):
        key, operator, raw_values = match.groups()
        values = {value.strip() for value in raw_values.split(",") if value.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQ_RE.match(text):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_RE.match(text):
        negated, key = match.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise BadRequest(f"unable to parse requirement: {text!r}")


def parse_label_selector(selector: str | None) -> Predicate:
    """A predicate on whole objects that tests ``metadata.labels`` against ``selector``."""
    if not selector:
        return lambda _obj: True
    requirements = [_label_requirement(part) for part in _split_requirements(selector)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value at a dotted ``path`` rendered as the API server does for field selectors."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def _field_requirement(text: str) -> Predicate:
    match = _EQ_RE.match(text) or re.match(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*$", text)
    if not match:
        raise BadRequest(f"invalid field selector: {text!r}")
    path, operator = match.group(1), match.group(2)
    value = match.group(3) if match.lastindex and match.lastindex >= 3 else ""
    if operator == "!=":
        return lambda obj: field_value(obj, path) != value
    return lambda obj: field_value(obj, path) == value


def parse_field_selector(selector: str | None) -> Predicate:
    """A predicate on whole objects for a comma-separated list of field requirements."""
    if not selector:
        return lambda _obj: True
    requirements = [_field_requirement(part) for part in _split_requirements(selector)]
    return lambda obj: all(requirement(obj) for requirement in requirements)


def parse_selection(query: Mapping[str, str]) -> Predicate:
    """The ``labelSelector`` and ``fieldSelector`` query parameters combined."""
    by_label = parse_label_selector(query.get("labelSelector"))
    by_field = parse_field_selector(query.get("fieldSelector"))
    return lambda obj: by_label(obj) and by_field(obj)
