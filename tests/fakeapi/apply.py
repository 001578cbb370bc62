"""Server-side apply and ``metadata.managedFields``, as a kube-apiserver's field manager does them.

Pure functions on plain dicts, used by the store:

- :func:`apply` merges an applied configuration into the live object for a field manager.
  The configuration's fields become the manager's (its ``Apply`` entry is exactly them); fields
  the manager applied before and applies no more are removed unless another manager owns them;
  changing a field another manager owns is a 409 listing the conflicts in the real server's
  words, unless ``force`` moves the ownership. An unchanged apply changes nothing (not even the
  entry's time), so the store commits no new resourceVersion.
- :func:`record_update` does what every other write does to managedFields: the writer's
  ``Update`` entry gains the fields it changed, and other managers lose them, without conflicts.
  A request object's managedFields replace the live ones (``[]`` or ``[{}]`` clears them), as
  clients may edit them; on subresources the request's are ignored.

Entries are keyed by (manager, operation, subresource), as structured-merge-diff keys them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from tests.fakeapi import fieldsets
from tests.fakeapi.errors import ApiError, bad_request
from tests.fakeapi.fieldsets import Obj, Path

Key = tuple[str, str, str | None]  # manager, operation (Apply | Update), subresource
_MISSING = object()


@dataclass
class Entry:
    paths: set[Path] = field(default_factory=set)
    api_version: str = ""
    time: str = ""


def decode(entries: Any) -> dict[Key, Entry]:
    """The managers of an object's ``managedFields`` (malformed entries are skipped)."""
    managers: dict[Key, Entry] = {}
    for raw in entries if isinstance(entries, list) else []:
        if not _well_formed(raw):
            continue
        key = (raw["manager"], raw["operation"], raw.get("subresource") or None)
        paths = fieldsets.decode(raw.get("fieldsV1") or {})
        managers[key] = Entry(paths, raw.get("apiVersion", ""), raw.get("time", ""))
    return managers


def _well_formed(raw: Any) -> bool:
    return (
        isinstance(raw, dict)
        and isinstance(raw.get("manager"), str)
        and raw.get("operation") in ("Apply", "Update")
        and isinstance(raw.get("fieldsV1", {}), dict)
    )


def encode(managers: dict[Key, Entry]) -> list[Obj]:
    """``managedFields`` as a server writes them: no empty entries, sorted like the server does
    (operation, time, manager, apiVersion, subresource)."""
    entries = []
    for (manager, operation, subresource), entry in managers.items():
        if not entry.paths:
            continue
        raw: Obj = {
            "manager": manager,
            "operation": operation,
            "apiVersion": entry.api_version,
            "time": entry.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fieldsets.encode(entry.paths),
        }
        if subresource:
            raw["subresource"] = subresource
        entries.append(raw)
    entries.sort(
        key=lambda e: (
            e["operation"],
            e["time"],
            e["manager"],
            e["apiVersion"],
            e.get("subresource", ""),
        )
    )
    return entries


def check_config(config: Any, name: str, namespace: str | None) -> Obj:
    """A copy of an applied configuration, which must have a type, name its object as the URL
    does and set no managedFields."""
    if not isinstance(config, dict) or not config.get("apiVersion") or not config.get("kind"):
        raise bad_request("an applied configuration needs an apiVersion and a kind")
    config = copy.deepcopy(config)
    meta = config.setdefault("metadata", {})
    if not isinstance(meta, dict) or meta.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    if meta.setdefault("name", name) != name:
        raise bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
        )
    if namespace and meta.setdefault("namespace", namespace) != namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    return config


def _in_scope(path: Path, subresource: str | None, has_status: bool) -> bool:
    """Writes to the main resource do not touch ``status`` (when it is a subresource), and
    writes to ``/status`` touch nothing else: the fields they cannot change are not theirs."""
    if subresource == "status":
        return path[:1] == ("f:status",)
    return not (has_status and path[:1] == ("f:status",))


def _scoped(config: Obj, subresource: str | None, has_status: bool) -> Obj:
    if subresource == "status":
        meta = config.get("metadata") or {}
        identity = {k: meta[k] for k in ("name", "namespace") if k in meta}
        kept = {k: v for k, v in config.items() if k in ("apiVersion", "kind", "status")}
        return {**kept, "metadata": identity}
    if has_status:
        return {k: v for k, v in config.items() if k != "status"}
    return config


def _stripped(obj: Obj | None) -> Obj:
    obj = copy.deepcopy(obj) if obj else {}
    obj.setdefault("metadata", {}).pop("managedFields", None)
    return obj


def record_update(
    old: Obj | None,
    new: Obj,
    sent: Any,
    *,
    kind: Any,
    manager: str,
    subresource: str | None,
    now: str,
    **_: Any,
) -> list[Obj]:
    """The managedFields of ``new`` after a non-apply write by ``manager`` to an object of
    ``kind`` (the store's); ``sent``: what the request's object said (not a list: nothing)."""
    api_version, schema = kind.api_version, kind.schema
    live = (old or {}).get("metadata", {}).get("managedFields")
    if subresource or not isinstance(sent, list):
        base = live
    elif sent in ([], [{}]):
        base = []
    else:
        base = sent if decode(sent) else live
    managers = decode(base)
    before = fieldsets.flatten(_stripped(old), schema) if old else {}
    after = fieldsets.flatten(_stripped(new), schema)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    removed = set(before) - set(after)
    me: Key = (manager, "Update", subresource)
    for key, entry in managers.items():
        if key != me:
            entry.paths -= changed | removed
    entry = managers.setdefault(me, Entry(api_version=api_version))
    paths = (entry.paths | changed) - removed
    if paths != entry.paths or changed or removed or not entry.time:
        entry.paths, entry.api_version, entry.time = paths, api_version, now
    return encode(managers)


def apply(
    live: Obj | None,
    config: Obj,
    *,
    manager: str,
    force: bool,
    subresource: str | None,
    api_version: str,
    schema: Obj | None,
    has_status: bool,
    now: str,
) -> Obj:
    """The object after ``manager`` applies ``config`` to ``live`` (None: it does not exist yet),
    with its managedFields; a 409 on conflicts unless ``force``."""
    config = _scoped(config, subresource, has_status)
    managers = decode((live or {}).get("metadata", {}).get("managedFields"))
    base = _stripped(live)
    merged = merge(base, config, schema)
    applied = {
        p for p in fieldsets.flatten(config, schema) if _in_scope(p, subresource, has_status)
    }
    before = fieldsets.flatten(base, schema) if live else {}
    after = fieldsets.flatten(merged, schema)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    me: Key = (manager, "Apply", subresource)
    conflicts = sorted(
        (
            (key, path)
            for key, entry in managers.items()
            if key != me
            for path in entry.paths & changed
        ),
        key=lambda c: (c[0][0], c[0][1], c[0][2] or "", c[1]),
    )
    if conflicts and not force:
        raise conflict_error(conflicts, managers)
    for key, path in conflicts:
        managers[key].paths.discard(path)
    previous = managers[me].paths if me in managers else set()
    owned = set(applied).union(*(e.paths for k, e in managers.items() if k != me))
    for path in sorted(previous - owned):
        if not fieldsets.has_prefix(owned, path):
            fieldsets.remove(merged, path)
    entry = managers.setdefault(me, Entry())
    if applied != entry.paths or merged != base or not entry.time:
        entry.paths, entry.api_version, entry.time = applied, api_version, now
    merged["metadata"]["managedFields"] = encode(managers)
    return merged


def merge(live: Obj, config: Obj, schema: Obj | None) -> Obj:
    """``config`` merged into ``live``: maps by key, associative lists by item key, the rest
    replaced. ``null`` in a configuration means the field is not applied."""
    result = copy.deepcopy(live)
    for key, value in config.items():
        if value is not None:
            typed = schema is not None and key != "metadata"
            sub = fieldsets.child_schema(schema, key) if typed else None
            result[key] = _merge(result.get(key), value, sub, key, typed)
    return result


def _merge(live: Any, config: Any, schema: Obj | None, name: str, typed: bool) -> Any:
    if isinstance(config, dict) and not fieldsets.atomic_map(name, config, schema):
        result = copy.deepcopy(live) if isinstance(live, dict) else {}
        for key, value in config.items():
            if value is not None:
                sub = fieldsets.child_schema(schema, key)
                result[key] = _merge(result.get(key), value, sub, key, typed)
        return result
    if isinstance(config, list) and config and isinstance(live, list):
        list_schema = (schema or {}) if typed else None
        elements = [fieldsets.item_element(name, config, item, list_schema) for item in config]
        current = [fieldsets.item_element(name, live, item, list_schema) for item in live]
        if all(elements) and all(current):
            item_schema = (schema or {}).get("items") if typed else None
            applied = dict(zip(elements, config, strict=True))
            result = [
                _merge(item, applied[e], item_schema, name, typed) if e in applied else item
                for e, item in zip(current, live, strict=True)
            ]
            return result + [item for e, item in applied.items() if e not in current]
    return copy.deepcopy(config)


def _who(key: Key, managers: dict[Key, Entry]) -> str:
    manager, operation, subresource = key
    text = f'"{manager}"'
    if subresource:
        text += f' with subresource "{subresource}"'
    if operation == "Update":
        text += f" using {managers[key].api_version}"
    return text


def conflict_error(conflicts: list[tuple[Key, Path]], managers: dict[Key, Entry]) -> ApiError:
    causes = [
        {
            "type": "FieldManagerConflict",
            "message": f"conflict with {_who(key, managers)}",
            "field": fieldsets.show(path),
        }
        for key, path in conflicts
    ]
    if len(conflicts) == 1:
        (key, path) = conflicts[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {_who(key, managers)}: "
            f"{fieldsets.show(path)}"
        )
    else:
        lines = []
        for key in sorted({key for key, _ in conflicts}, key=lambda k: (k[0], k[1], k[2] or "")):
            lines.append(f"conflicts with {_who(key, managers)}:")
            lines += [f"- {fieldsets.show(p)}" for k, p in conflicts if k == key]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})
