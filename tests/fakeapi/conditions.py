"""Status conditions as controllers write them: each keeps its transition time while its status
stays. Pure."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
Condition = tuple[bool, str, str]  # ok, reason, message


def conditions(
    wanted: dict[str, Condition], before: list[Obj], now: str, generation: int | None = None
) -> list[Obj]:
    """The ``wanted`` conditions, by type, dated ``now`` unless ``before`` had the same status;
    with ``observedGeneration`` when a ``generation`` is given (Gateway API's, not the HPA's)."""
    old = {c["type"]: c for c in before}
    result = []
    for type_, (ok, reason, message) in wanted.items():
        status = "True" if ok else "False"
        kept = old.get(type_)
        since = kept["lastTransitionTime"] if kept and kept["status"] == status else now
        condition: Obj = {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": since,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        result.append(condition)
    return result
