"""What a CRD's structural schema does on a real server: prune, default, validate; printer columns.

- Pruning drops fields the schema does not declare (but keeps what
  ``x-kubernetes-preserve-unknown-fields`` allows), so a CRD whose schema lacks the status
  fields loses the status an operator writes, as on a cluster. With ``fieldValidation=Strict``
  unknown fields are an error instead.
- Defaults (``default:``) are filled in, then the object is validated with ``jsonschema``
  (OpenAPI's ``nullable`` mapped to JSON Schema); each failure becomes a 422 cause.
- Tables (``kubectl get``): Name, the CRD's ``additionalPrinterColumns`` (simple JSONPaths) or Age.
"""

from __future__ import annotations

import copy
import datetime
import re
from typing import Any

import jsonschema

from tests.fakeapi.errors import bad_request

Schema = dict[str, Any]

_SCHEMA_KEYS = (
    "type",
    "properties",
    "items",
    "required",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "additionalProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "multipleOf",
    "minProperties",
    "maxProperties",
    "format",
)


def prune(
    value: Any, schema: Schema | None, path: str = "", unknown: list[str] | None = None
) -> Any:
    """A copy of ``value`` without the fields ``schema`` leaves out (their paths: ``unknown``)."""
    if schema is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        if isinstance(value, dict) and schema and "properties" in schema:
            props = schema["properties"]
            return {
                k: prune(v, props.get(k), f"{path}.{k}", unknown) if k in props else v
                for k, v in value.items()
            }
        return copy.deepcopy(value)
    if isinstance(value, dict):
        if schema.get("x-kubernetes-embedded-resource"):
            keep = ("apiVersion", "kind", "metadata")
            extra = {k: copy.deepcopy(v) for k, v in value.items() if k in keep}
        else:
            extra = {}
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        if props is None and isinstance(additional, dict):
            return {k: prune(v, additional, f"{path}.{k}", unknown) for k, v in value.items()}
        if props is None and (additional is True or schema.get("type") != "object"):
            return copy.deepcopy(value)
        props = props or {}
        result = dict(extra)
        for key, item in value.items():
            if key in props:
                result[key] = prune(item, props[key], f"{path}.{key}", unknown)
            elif key not in extra and unknown is not None:
                unknown.append(f"{path}.{key}")
        return result
    if isinstance(value, list):
        return [
            prune(item, schema.get("items"), f"{path}[{i}]", unknown)
            for i, item in enumerate(value)
        ]
    return value


def prune_object(obj: dict[str, Any], schema: Schema, *, strict: bool) -> dict[str, Any]:
    """An object without what its schema leaves out; with ``strict``, a 400 naming it instead."""
    head = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    root = {k: v for k, v in obj.items() if k not in head}
    unknown: list[str] = []
    root = prune(root, schema, "", unknown)
    if strict and unknown:
        raise bad_request(
            "strict decoding error: " + ", ".join(f'unknown field "{u[1:]}"' for u in unknown)
        )
    return {**head, **root}


def default(value: Any, schema: Schema | None) -> Any:
    """Fill ``default:`` values of absent properties, recursively (modifies ``value``)."""
    if schema is None:
        return value
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = default(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [default(item, schema["items"]) for item in value]
    return value


def _json_schema(schema: Any) -> Any:
    """OpenAPI v3 (Kubernetes flavour) -> JSON Schema: ``nullable``, int-or-string, no x- keys."""
    if isinstance(schema, list):
        return [_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties",):
            result[key] = {name: _json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_KEYS:
            result[key] = _json_schema(value)
    if schema.get("x-kubernetes-int-or-string"):
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        result.pop("type", None)
    if schema.get("nullable") and "type" in result:
        result["type"] = [result["type"], "null"]
    return result


def validate(obj: dict[str, Any], schema: Schema) -> list[tuple[str, str]]:
    """The 422 causes of ``obj`` against ``schema``: (``spec.x``, ``Invalid value: ...``)."""
    validator = jsonschema.Draft4Validator(_json_schema(schema))
    causes = []
    for error in sorted(
        validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        where = ".".join(str(p) for p in error.absolute_path) or "<root>"
        causes.append((where, f"Invalid value: {error.instance!r}: {error.message}"))
    return causes


def _jsonpath(obj: Any, path: str) -> Any:
    """Simple JSONPaths only: ``.status.replicas``, ``.spec.items[0].name``."""
    for part in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path):
        name, index = part
        if name:
            obj = obj.get(name) if isinstance(obj, dict) else None
        else:
            obj = obj[int(index)] if isinstance(obj, list) and int(index) < len(obj) else None
    return obj


def age(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    if not timestamp:
        return "<unknown>"
    start = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = int(((now or datetime.datetime.now(datetime.UTC)) - start).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def table(
    objects: list[dict[str, Any]],
    columns: list[dict[str, Any]],
    *,
    resource_version: str,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1 Table`` as ``kubectl get`` asks for (``Accept: ...;as=Table``)."""
    columns = columns or [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]
    definitions = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "priority": 0,
            "description": "Name must be unique within a namespace.",
        }
    ]
    definitions += [
        {
            "name": c["name"],
            "type": c.get("type", "string"),
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": c.get("priority", 0),
        }
        for c in columns
    ]
    rows = []
    for obj in objects:
        cells: list[Any] = [obj["metadata"]["name"]]
        for column in columns:
            value = _jsonpath(obj, column["jsonPath"])
            if column.get("type") == "date":
                value = age(value)
            cells.append("<none>" if value is None else value)
        if include_object == "Object":
            row_object = obj
        elif include_object == "None":
            row_object = None
        else:
            row_object = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append({"cells": cells, "object": row_object})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
