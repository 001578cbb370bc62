"""Field sets as server-side apply sees objects: paths to leaves and list items, and FieldsV1.

A path is a tuple of FieldsV1 elements: ``f:spec``, ``k:{"name":"app"}`` (an item of an
associative list, by its keys), ``v:"x"`` (an item of a set). Like structured-merge-diff's
``ToFieldSet``, an object's set holds its leaves (scalars, atomic lists and maps, empty maps) and
its list items, not the maps in between. Which lists are associative comes from the CRD schema
(``x-kubernetes-list-type``) for custom resources and from a table of the built-in fields we
serve otherwise (Kubernetes' ``listType=map`` fields); other lists are atomic, as on a server.
"""

from __future__ import annotations

import copy
import json
from typing import Any

Path = tuple[str, ...]
Obj = dict[str, Any]

ITEM = "<item>"  # the "value" of a list item's own path: only its presence matters

# built-in list fields merged by key (listType=map), by field name; ``ports`` is decided by shape
LIST_KEYS = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "hostAliases": ("ip",),
}
SET_LISTS = {"finalizers"}
# what the field manager strips before tracking: identity and server-owned metadata
STRIPPED = {
    ("f:apiVersion",),
    ("f:kind",),
    *(
        ("f:metadata", f"f:{key}")
        for key in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        )
    ),
}


def _key_element(item: Obj, keys: tuple[str, ...]) -> str | None:
    key = {k: item[k] for k in keys if k in item}
    if "protocol" in keys and "protocol" not in key:
        key["protocol"] = "TCP"  # the server defaults it, and keys use the defaulted value
    if not any(k in item for k in keys if k != "protocol"):
        return None
    return "k:" + json.dumps(key, sort_keys=True, separators=(",", ":"))


def list_type(name: str, items: list[Any], schema: Obj | None) -> tuple[str, tuple[str, ...]]:
    """("map", keys) | ("set", ()) | ("atomic", ()) for a list field."""
    if schema is not None:
        kind = schema.get("x-kubernetes-list-type", "atomic")
        return kind, tuple(schema.get("x-kubernetes-list-map-keys", ()))
    if name in SET_LISTS:
        return "set", ()
    if name == "ports":
        first = items[0] if items and isinstance(items[0], dict) else {}
        return "map", ("containerPort" if "containerPort" in first else "port", "protocol")
    if name in LIST_KEYS:
        return "map", LIST_KEYS[name]
    return "atomic", ()


def atomic_map(name: str, value: Obj, schema: Obj | None) -> bool:
    if schema is not None:
        return schema.get("x-kubernetes-map-type") == "atomic"
    # a LabelSelector (a Deployment's spec.selector) is atomic in Kubernetes' schema
    return name == "selector" and bool(value) and set(value) <= {"matchLabels", "matchExpressions"}


def child_schema(schema: Obj | None, key: str) -> Obj | None:
    if schema is None:
        return None
    props = schema.get("properties") or {}
    if key in props:
        return props[key]  # type: ignore[no-any-return]
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


def item_element(name: str, items: list[Any], item: Any, schema: Obj | None) -> str | None:
    """The path element of ``item`` in the list field ``name`` (None: the list is atomic)."""
    kind, keys = list_type(name, items, schema)
    if kind == "set":
        return "v:" + json.dumps(item, sort_keys=True, separators=(",", ":"))
    if kind == "map" and isinstance(item, dict):
        return _key_element(item, keys)
    return None


def flatten(obj: Obj, schema: Obj | None = None) -> dict[Path, Any]:
    """The field set of an object with the value at each path (``ITEM`` for list items).

    ``schema`` is a CRD's ``openAPIV3Schema``; ``metadata`` always follows the built-in table.
    """
    out: dict[Path, Any] = {}
    for key, value in obj.items():
        sub = None if key == "metadata" or schema is None else child_schema(schema, key)
        _walk(value, key, sub, schema is not None and key != "metadata", (f"f:{key}",), out)
    for path in STRIPPED:
        out.pop(path, None)
    return {p: v for p, v in out.items() if p[:2] != ("f:metadata", "f:managedFields")}


def _walk(value: Any, name: str, schema: Obj | None, typed: bool, path: Path, out: dict) -> None:
    if isinstance(value, dict) and value and not atomic_map(name, value, schema):
        for key, item in value.items():
            if item is not None:
                sub = child_schema(schema, key)
                _walk(item, key, sub, typed, (*path, f"f:{key}"), out)
        return
    if isinstance(value, list) and value:
        list_schema = (schema or {}) if typed else None
        elements = [item_element(name, value, item, list_schema) for item in value]
        if all(elements) and len(set(elements)) == len(elements):
            item_schema = (schema or {}).get("items") if typed else None
            for element, item in zip(elements, value, strict=True):
                assert element is not None
                if element.startswith("v:"):
                    out[(*path, element)] = item
                    continue
                out[(*path, element)] = ITEM
                for key, sub in item.items():
                    child = child_schema(item_schema, key)
                    _walk(sub, key, child, typed, (*path, element, f"f:{key}"), out)
            return
    out[path] = copy.deepcopy(value)


def has_prefix(paths: set[Path], prefix: Path) -> bool:
    """Whether any path lies strictly below ``prefix``."""
    n = len(prefix)
    return any(len(p) > n and p[:n] == prefix for p in paths)


# --- FieldsV1 ------------------------------------------------------------------------------


def encode(paths: set[Path]) -> Obj:
    """The FieldsV1 tree of a set: ``{"f:spec": {"f:replicas": {}}}``, ``.`` marking members
    that also have members below them."""
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = root
        for element in path:
            node = node[element]
        if node:
            node["."] = {}
    return _sorted(root)


def _sorted(node: Obj) -> Obj:
    return {k: _sorted(node[k]) for k in sorted(node, key=lambda k: (k != ".", k))}


def decode(tree: Obj, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for element, sub in (tree or {}).items():
        if element == ".":
            paths.add(prefix)
            continue
        path = (*prefix, element)
        if sub:
            paths |= decode(sub, path)
        else:
            paths.add(path)
    return paths


def show(path: Path) -> str:
    """A path as structured-merge-diff prints it: ``.spec.containers[name="app"].image``."""
    parts = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            parts.append(f".{rest}")
        elif kind == "k":
            key = json.loads(rest)
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]")
        else:
            parts.append(f"[={rest}]")
    return "".join(parts)


# --- editing objects by path ---------------------------------------------------------------


def remove(obj: Obj, path: Path) -> None:
    """Delete what ``path`` points at, then the maps and lists it leaves empty (not top level)."""
    trail: list[tuple[Any, Any]] = []  # (container, key or index)
    node: Any = obj
    name = ""
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(node, dict) or rest not in node:
                return
            trail.append((node, rest))
            node, name = node[rest], rest
        else:
            if not isinstance(node, list):
                return
            found = [i for i, item in enumerate(node) if _matches(name, node, item, element)]
            if not found:
                return
            trail.append((node, found[0]))
            node = node[found[0]]
    while trail:
        container, key = trail.pop()
        del container[key]
        if container or not trail or trail[-1][0] is obj:
            return


def _matches(name: str, items: list[Any], item: Any, element: str) -> bool:
    if element.startswith("v:"):
        return "v:" + json.dumps(item, sort_keys=True, separators=(",", ":")) == element
    keys = tuple(json.loads(element[2:]))
    return isinstance(item, dict) and _key_element(item, keys) == element
