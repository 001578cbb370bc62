"""Turns pydantic validation errors into one-line messages. Pure, no I/O.

A message reads ``<field path> <value seen> <what is allowed>``, e.g.
``predictor.processes_per_replica 0 must be between 1 and 100``. Rules written for cortex raise
:func:`rule_error`; pydantic's own errors (types, bounds, unknown keys) are reworded here from the
field's metadata, so no raw pydantic text reaches a user.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

__all__ = ["describe", "rule_error", "show"]

_MAX_SHOWN = 60
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_INT_ERRORS = {"int_type", "int_parsing", "int_from_float", "int_parsing_size"}
_FLOAT_ERRORS = {"float_type", "float_parsing", "finite_number"}
_MODEL_ERRORS = {"model_type", "model_attributes_type"}


def rule_error(rule: str, value: Any = ..., field: str = "") -> PydanticCustomError:
    """An error raised by a cortex rule: reads ``<path>[.field] [<value>] <rule>``.

    ``field`` extends the location pydantic reports (model-level rules name the field they are
    about); leave ``value`` out when the rule says everything itself.
    """
    ctx: dict[str, Any] = {"rule": rule, "field": field}
    if value is not ...:
        ctx["value"] = value
    return PydanticCustomError("cortex_rule", "{rule}", ctx)


def show(value: object) -> str:
    """A value as a message shows it: strings quoted, YAML spelling of null and booleans, short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return f"'{_shorten(value)}'"
    return _shorten(json.dumps(value, default=str))


def _shorten(text: str) -> str:
    """One line however hostile the text: control characters are escaped (``\\n``, ``\\x00``)."""
    if not text.isprintable():
        head = text[: _MAX_SHOWN + 1]
        text = "".join(char if char.isprintable() else _escape(char) for char in head)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _escape(char: str) -> str:
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or repr(char)[1:-1]


def describe(error: ValidationError, root: type[BaseModel]) -> list[str]:
    """Every error of ``error``, one line each; ``root`` is the model that was validated.

    The API's own name comes first (it labels the rest), then unknown fields: a typo
    (``preditor``) also makes the field it meant "required", and the typo is the one to fix.
    """
    details = error.errors(include_url=False)

    def rank(index: int) -> tuple[int, int]:
        err = details[index]
        named = tuple(err["loc"][:1]) == ("name",)
        return (0 if named else 1 if err["type"] == "extra_forbidden" else 2, index)

    lines = [_message(details[i], root) for i in sorted(range(len(details)), key=rank)]
    return list(dict.fromkeys(lines))


def _message(err: ErrorDetails, root: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "cortex_rule":
        path = ".".join(p for p in (_join(loc), str(ctx["field"])) if p)
        shown = f" {show(ctx['value'])}" if "value" in ctx else ""
        return f"{path}{shown} {ctx['rule']}".lstrip()
    if loc and loc[-1] == "[key]":
        return f"{_join(loc[:-2])} key {show(err['input'])} must be a string"
    path = _join(loc)
    if kind == "missing":
        return f"{path} is required"
    if kind == "extra_forbidden":
        return _unknown(path, str(loc[-1]), _allowed(root, loc[:-1]))
    return f"{path} {show(err['input'])} {_requirement(kind, ctx, _field_at(root, loc))}"


def _unknown(path: str, key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if close:
        return f"unknown field '{path}' (did you mean '{close[0]}'?)"
    return f"unknown field '{path}' (allowed: {', '.join(allowed)})"


def _requirement(kind: str, ctx: dict[str, Any], field: FieldInfo | None) -> str:
    bounds = _bounds(field)
    if kind in _RANGE_ERRORS:
        return f"must be {bounds}"
    if kind in _INT_ERRORS:
        return f"must be an integer {bounds}".rstrip()
    if kind in _FLOAT_ERRORS:
        return f"must be a number {bounds}".rstrip()
    if kind == "string_type":
        return "must be a string"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long"
    if kind == "dict_type":
        return "must be a mapping"
    if kind in _MODEL_ERRORS:
        return "must be a mapping of fields"
    if kind == "literal_error":
        return f"must be one of: {', '.join(_literal_values(field))}"
    return f"is not valid (must be {bounds})" if bounds else "is not valid"


def _join(loc: tuple[int | str, ...]) -> str:
    """A field path; keys come from the user (``predictor.env.<key>``), so each is shortened and
    escaped to keep the message on one line."""
    return ".".join(_shorten(str(part)) for part in loc)


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bounds(field: FieldInfo | None) -> str:
    """The allowed range of a numeric field from its metadata: ``between 1 and 100``, ``> 1``."""
    low = high = ""
    for item in field.metadata if field is not None else ():
        if getattr(item, "ge", None) is not None:
            low = f">= {_number(item.ge)}"
        if getattr(item, "gt", None) is not None:
            low = f"> {_number(item.gt)}"
        if getattr(item, "le", None) is not None:
            high = f"<= {_number(item.le)}"
        if getattr(item, "lt", None) is not None:
            high = f"< {_number(item.lt)}"
    if low.startswith(">=") and high.startswith("<="):
        return f"between {low[3:]} and {high[3:]}"
    return " and ".join(part for part in (low, high) if part)


def _literal_values(field: FieldInfo | None) -> list[str]:
    if field is None:
        return []
    return [str(arg) for arg in typing.get_args(field.annotation)]


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The model class inside ``annotation`` (``Predictor``, ``ServerSideBatching | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _lookup(model: type[BaseModel], key: int | str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _field_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> FieldInfo | None:
    model: type[BaseModel] | None = root
    field: FieldInfo | None = None
    for key in loc:
        if model is None:
            return None
        field = _lookup(model, key)
        if field is None:
            return None
        model = _model_in(field.annotation)
    return field


def _allowed(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] | None = root
    if loc:
        field = _field_at(root, loc)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]
