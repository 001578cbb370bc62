"""The three patch formats a Kubernetes API server accepts. Pure functions on plain dicts.

- JSON merge patch (RFC 7386): maps merge, ``null`` deletes, lists are replaced.
- JSON patch (RFC 6902), with ``test`` ops; a failed op is a 422, as on a real server.
- Strategic merge patch, approximated: lists of known fields merge by their merge key
  (containers by name, ...), the ``$patch``/``$retainKeys``/``$setElementOrder``/
  ``$deleteFromPrimitiveList`` directives are understood well enough for ``kubectl apply``;
  other lists are replaced. Real servers answer 415 to it for custom resources.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from tests.fakeapi.errors import ApiError

# field name -> merge key of its list items (Kubernetes' patchMergeKey for the fields we serve)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
}
PRIMITIVE_MERGE = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: the result of applying ``patch`` to ``target`` (neither is modified)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], ops: Any) -> dict[str, Any]:
    """RFC 6902; a failed ``test`` or a bad path is a 422 (kopf retries on it)."""
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(target, ops)  # type: ignore[no-any-return]
    except jsonpatch.JsonPatchTestFailed as exc:
        raise ApiError(
            422, "Invalid", f"the server rejected our request: test failed: {exc}"
        ) from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ApiError(422, "Invalid", f"the server rejected our request: {exc}") from None


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    """An approximation of Kubernetes' strategic merge patch for the built-in kinds."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name, []) if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, key)
        else:
            merged = strategic_merge(result.get(key), value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: Any, patch: list[Any], field: str) -> list[Any]:
    if not isinstance(current, list):
        current = []
    if field in PRIMITIVE_MERGE:
        return current + [v for v in patch if v not in current]
    key = MERGE_KEYS.get(field)
    if field == "ports" and patch and isinstance(patch[0], dict):
        key = "containerPort" if "containerPort" in patch[0] else "port"
    if key is None or not all(isinstance(item, dict) for item in patch):
        return [item for item in copy.deepcopy(patch) if not _is_delete(item)]
    if any(item.get("$patch") == "replace" for item in patch):
        return [item for item in copy.deepcopy(patch) if item.get("$patch") != "replace"]
    result = copy.deepcopy(current)
    for item in patch:
        index = next(
            (
                i
                for i, old in enumerate(result)
                if isinstance(old, dict) and old.get(key) == item.get(key)
            ),
            None,
        )
        if _is_delete(item):
            if index is not None:
                del result[index]
        elif index is None:
            result.append(copy.deepcopy(item))
        else:
            result[index] = strategic_merge(result[index], item, field)
    return result


def _is_delete(item: Any) -> bool:
    return isinstance(item, dict) and item.get("$patch") == "delete"
