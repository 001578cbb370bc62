"""What the cluster's objects say about an API, as ``cortex get`` shows it. Pure: dicts of the
API server's objects in, words and numbers out.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from cortex.contracts import APIState
from cortex.k8s import labels

__all__ = [
    "MANAGER",
    "conditions",
    "config_maps_of",
    "event_time",
    "last_update",
    "ready",
    "replicas",
    "short",
    "started",
    "state",
]

MANAGER = "cortex-cli"  # the field manager of what `cortex deploy` applies


def state(status: dict[str, Any]) -> APIState:
    try:
        return APIState(status.get("status") or APIState.UPDATING)
    except ValueError:
        return APIState.UPDATING


def config_maps_of(pod_spec: dict[str, Any]) -> set[str]:
    return {
        volume["configMap"]["name"]
        for volume in pod_spec.get("volumes") or []
        if "configMap" in volume
    }


def ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def started(pod: dict[str, Any]) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(
        "running" in (s.get("state") or {}) or "terminated" in (s.get("state") or {})
        for s in statuses
    )


def short(api_name: str, pod_name: str) -> str:
    """``api-iris-5d8f9c-x7k2p`` -> ``5d8f9c-x7k2p``: the part that tells replicas apart."""
    return pod_name.removeprefix(f"{labels.child_name(api_name)}-")


def replicas(pods: list[dict[str, Any]]) -> tuple[str, ...]:
    lines = []
    for pod in pods:
        status = pod.get("status") or {}
        why = status.get("phase", "Pending")
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting")
            if waiting:
                why = waiting.get("reason", why)
        state = "ready" if ready(pod) else f"not ready ({why})"
        lines.append(f"{pod['metadata']['name']}: {state}")
    return tuple(lines)


def conditions(status: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        f"{c.get('type')}={c.get('status')} {c.get('reason', '')}: {c.get('message', '')}".rstrip(
            ": "
        )
        for c in status.get("conditions") or []
    )


def event_time(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("metadata", {}).get("creationTimestamp")
        or ""
    )


def last_update(found: dict[str, Any]) -> float:
    """When ``cortex deploy`` (or anyone) last wrote the spec, else when it was created."""
    times = [
        f.get("time")
        for f in found["metadata"].get("managedFields") or []
        if f.get("manager") == MANAGER and f.get("time")
    ]
    stamp = max(times, default=None) or found["metadata"].get("creationTimestamp")
    if not stamp:
        return time.time()
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
