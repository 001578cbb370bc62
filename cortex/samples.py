"""A project's ``sample.json``: a request body that works, as the original Cortex examples ship.

``cortex get NAME`` shows it in its curl example; the runtime puts it, with a JSON schema drawn
from it, in the request body of its OpenAPI document (/docs). A missing, unreadable, too large
or invalid file is no sample: a sample is a help, never a reason to fail. Pure but for reading
the one file; imports nothing of ours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FILE", "MAX_BYTES", "Sample", "parse", "read", "schema"]

FILE = "sample.json"
MAX_BYTES = 64 * 1024  # a sample is for reading and pasting, not a data set
_SCHEMA_DEPTH = 16  # deeper than this a schema says nothing more a reader needs

_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


@dataclass(frozen=True)
class Sample:
    """The sample as sent (``text``, one compact line) and as parsed (``value``)."""

    path: Path
    text: str
    value: Any


def read(project: Path) -> Sample | None:
    """``project``'s sample.json, or None when there is none that is valid JSON."""
    path = project / FILE
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        return parse(path, path.read_bytes())
    except OSError:
        return None


def parse(path: Path, data: bytes) -> Sample | None:
    """The sample in ``data`` (the file at ``path``), or None when it is no valid JSON."""
    if len(data) > MAX_BYTES:
        return None
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return Sample(path, json.dumps(value, ensure_ascii=False), value)


def schema(value: Any, depth: int = 0) -> dict[str, Any]:
    """A JSON schema that ``value`` fits, as a reader would write it: types and properties,
    nothing required (the sample shows one request, not every allowed one)."""
    if depth >= _SCHEMA_DEPTH or value is None:
        return {}
    for kind, name in _TYPES:  # bool first: it is an int too
        if isinstance(value, kind):
            return {"type": name}
    if isinstance(value, list):
        return {"type": "array", "items": schema(value[0], depth + 1) if value else {}}
    properties = {str(key): schema(item, depth + 1) for key, item in value.items()}
    return {"type": "object", "properties": properties}
