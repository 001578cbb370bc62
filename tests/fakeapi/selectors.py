"""Label and field selectors (``?labelSelector=``, ``?fieldSelector=``) as predicates on objects."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.fakeapi.errors import ApiError

Predicate = Callable[[dict[str, Any]], bool]

_SET = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside ``in (a, b)`` parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def _label_requirement(text: str) -> Predicate:
    eq = _EQ.match(text)
    if eq:
        key, op, value = eq.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    match = _SET.match(text)
    if not match:
        raise ApiError(400, "BadRequest", f"unable to parse requirement: {text!r}")
    negated, key, op, values = match.groups()
    if op:
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    if negated:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def label_selector(selector: str | None) -> Predicate:
    """Equality- and set-based requirements, all of which must hold (``a=b,c!=d,e in (f),!g``)."""
    if not selector:
        return lambda obj: True
    requirements = [_label_requirement(part) for part in _split(selector)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_selector(selector: str | None) -> Predicate:
    """``path=value`` / ``path!=value`` on dotted paths (``metadata.name=x``, ``status.phase``)."""
    if not selector:
        return lambda obj: True
    checks: list[tuple[str, bool, str]] = []
    for part in _split(selector):
        eq = _EQ.match(part)
        if not eq:
            raise ApiError(400, "BadRequest", f"invalid field selector: {part!r}")
        path, op, value = eq.groups()
        checks.append((path, op != "!=", value))
    return lambda obj: all((_field(obj, path) == value) == equal for path, equal, value in checks)
