"""Turns a pydantic model's JSON schema into a Kubernetes structural schema. No I/O here.

A CRD's ``openAPIV3Schema`` is OpenAPI 3.0 with Kubernetes' rules, not JSON Schema 2020-12:

- ``$ref`` is not allowed: definitions are inlined;
- ``anyOf: [X, {type: null}]`` (an optional field) becomes ``X`` with ``nullable: true``;
- an int-or-string (``x-kubernetes-int-or-string``) keeps exactly ``anyOf: [{type: integer},
  {type: string}]``; its ``minimum`` and ``pattern`` move up a level (each applies to one type);
- ``exclusiveMinimum: 0`` (a number) becomes ``minimum: 0, exclusiveMinimum: true``;
- ``const`` becomes a one-value ``enum``; ``title`` is dropped;
- ``additionalProperties: false`` is dropped (Kubernetes prunes unknown fields, and ``kubectl``
  rejects them with its default strict field validation); a free-form object
  (``additionalProperties: true``) gets ``x-kubernetes-preserve-unknown-fields: true``;
- defaults stay where Kubernetes can apply them: scalars, and ``{}`` for an optional section
  (Kubernetes then fills the section's own defaults); ``null`` defaults are dropped.

Any keyword without a translation raises ``ValueError``, so a model change that the CRD cannot
express fails the CRD test instead of producing a schema the API server rejects.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["structural_schema"]

_KEPT = (
    "description",
    "nullable",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "x-kubernetes-int-or-string",
)
_DROPPED = ("title",)
_HANDLED = (
    "$ref",
    "anyOf",
    "type",
    "const",
    "default",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "properties",
    "required",
    "additionalProperties",
    "items",
)
_NULL = {"type": "null"}
_INT_OR_STRING = ("integer", "string")
_ORDER = (
    "type",
    "description",
    "nullable",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "anyOf",
    "x-kubernetes-int-or-string",
    "required",
    "properties",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "items",
)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model`` (what it validates, not what it dumps)."""
    raw = model.model_json_schema(mode="validation")
    definitions = raw.pop("$defs", {})
    return _Converter(definitions).convert(raw, model.__name__)


class _Converter:
    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions

    def convert(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        node = self._flatten(node, path)
        unknown = set(node) - set(_KEPT) - set(_DROPPED) - set(_HANDLED)
        if unknown:
            raise ValueError(f"{path}: no structural-schema translation for {sorted(unknown)}")
        if node.get("x-kubernetes-int-or-string"):
            node = _int_or_string(node, path)
        out = {key: node[key] for key in ("type", *_KEPT) if key in node}
        if "const" in node:
            out["enum"] = [node["const"]]
        _exclusive_bounds(node, out, path)
        if node.get("type") == "object":
            self._object(node, out, path)
        if "items" in node:
            out["items"] = self.convert(node["items"], f"{path}[]")
        if node.get("default") is not None:
            out["default"] = _default(node["default"], out, path)
        if "anyOf" in node:
            out["anyOf"] = [{"type": kind} for kind in _INT_OR_STRING]
        elif "type" not in out:
            raise ValueError(f"{path}: a structural schema needs a type")
        return {key: out[key] for key in _ORDER if key in out}

    def _flatten(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        """Inlines ``$ref`` and turns ``anyOf: [X, null]`` into ``X`` + ``nullable``."""
        while True:
            if "$ref" in node:
                rest = {key: value for key, value in node.items() if key != "$ref"}
                name = node["$ref"].removeprefix("#/$defs/")
                if name not in self.definitions:
                    raise ValueError(f"{path}: unresolvable reference {node['$ref']!r}")
                node = {**self.definitions[name], **rest}
            elif "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
                branches = node["anyOf"]
                options = [branch for branch in branches if branch != _NULL]
                if len(options) != 1 or len(branches) != 2:
                    raise ValueError(f"{path}: only 'anyOf: [X, null]' has a structural form")
                rest = {key: value for key, value in node.items() if key != "anyOf"}
                node = {**options[0], **rest, "nullable": True}
            else:
                return node

    def _object(self, node: dict[str, Any], out: dict[str, Any], path: str) -> None:
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if properties:
            if extra not in (None, False):
                raise ValueError(f"{path}: properties and additionalProperties cannot mix")
            if node.get("required"):
                out["required"] = list(node["required"])
            out["properties"] = {
                name: self.convert(prop, f"{path}.{name}") for name, prop in properties.items()
            }
        elif isinstance(extra, dict):
            out["additionalProperties"] = self.convert(extra, f"{path}.*")
        elif extra in (None, True):
            out["x-kubernetes-preserve-unknown-fields"] = True
        else:
            raise ValueError(f"{path}: an object without properties must allow some")


def _int_or_string(node: dict[str, Any], path: str) -> dict[str, Any]:
    """Keeps ``anyOf`` as exactly integer-or-string; branch constraints move up a level."""
    branches = node.get("anyOf", [])
    if sorted(branch.get("type", "") for branch in branches) != list(_INT_OR_STRING):
        raise ValueError(f"{path}: x-kubernetes-int-or-string needs an integer and a string")
    flat = dict(node)
    for branch in branches:
        constraints = {key: value for key, value in branch.items() if key != "type"}
        if set(constraints) - {"minimum", "maximum", "pattern"}:
            raise ValueError(f"{path}: no structural form for int-or-string {constraints}")
        flat.update(constraints)
    return flat


def _exclusive_bounds(node: dict[str, Any], out: dict[str, Any], path: str) -> None:
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if exclusive not in node:
            continue
        if inclusive in node:
            raise ValueError(f"{path}: both {inclusive} and {exclusive} are set")
        out[inclusive] = node[exclusive]
        out[exclusive] = True


def _default(value: Any, schema: dict[str, Any], path: str) -> Any:
    """A default Kubernetes can apply: scalars as they are, an optional section as ``{}``."""
    if not isinstance(value, dict):
        return value
    if schema.get("required"):
        raise ValueError(f"{path}: a section with required fields cannot have a default")
    return {}
