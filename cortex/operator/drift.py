"""Does a live object already hold what we would apply? Pure.

``covers(live, desired)`` is True when every field of ``desired`` (what the operator renders and
applies with server-side apply) has the same value in ``live`` (what the API server keeps). The
server adds defaults and status, other managers add fields of their own: those extras never
count as drift, because applying our configuration again would not remove them either. So a
restarted operator writes nothing to a converged cluster, and a hand edit of a field we own (an
image, a port) is drift that the next apply repairs.

- Maps: every key of ``desired`` is covered in ``live``.
- Lists of maps with a ``name`` (containers, env, ports, volumes) or ``uid`` (ownerReferences)
  in every item: matched by that key, in any order, extra live items allowed (Kubernetes merges
  these lists by key too).
- Other lists: the same length, item by item.
- Strings that are both Kubernetes quantities compare by value (``"0.5"`` covers ``"500m"``:
  the API server stores quantities in canonical form); everything else by equality.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cortex.spec import parse_quantity

__all__ = ["covers", "quantity_value"]

_LIST_KEYS = ("name", "uid")


def quantity_value(text: str) -> Decimal | None:
    """The value of a Kubernetes quantity (``"500m"`` -> 0.5, ``"1Gi"`` -> 1073741824), or None."""
    try:
        return parse_quantity(text)
    except (ValueError, ArithmeticError):
        return None


def _key(items: list[Any]) -> str | None:
    for key in _LIST_KEYS:
        if items and all(isinstance(item, dict) and key in item for item in items):
            return key
    return None


def covers(live: Any, desired: Any) -> bool:
    """True when ``live`` holds every field of ``desired`` with the same value."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and covers(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list):
            return False
        key = _key(desired)
        if key is not None and _key(live) == key:
            by_key = {item[key]: item for item in live}
            return all(item[key] in by_key and covers(by_key[item[key]], item) for item in desired)
        return len(live) == len(desired) and all(map(covers, live, desired))
    if isinstance(desired, str) and isinstance(live, str) and desired != live:
        wanted, found = quantity_value(desired), quantity_value(live)
        return wanted is not None and wanted == found
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired  # True == 1 in Python, not in Kubernetes
    return bool(live == desired)
