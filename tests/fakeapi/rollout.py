"""The arithmetic of Deployment rollouts, as ``pkg/controller/deployment/util`` does it. Pure.

Fenceposts (``maxSurge`` rounded up, ``maxUnavailable`` down, never both 0), how far the new
ReplicaSet may grow, proportional shares when a Deployment is scaled mid-rollout, the status
computed from the ReplicaSets, the conditions (set only when status or reason change), and the
pod-template hash (FNV-32a, encoded as ``rand.SafeEncodeString`` does: ``5d8f9c7b4``).
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from typing import Any

from tests.fakeapi import clock

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX = "deployment.kubernetes.io/max-replicas"
NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX,
    "deprecated.deployment.rollback.to",
}
HISTORY_CHARS = 2000  # the controller's limit on the revision-history annotation
UNLIMITED = 2**31 - 1  # math.MaxInt32: no deadline, no history limit
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def replicas(obj: Obj | None) -> int:
    """``spec.replicas`` (the server defaults it); 0 for no object."""
    return int(obj["spec"].get("replicas", 1)) if obj else 0


def status_of(obj: Obj | None, key: str) -> int:
    return int(((obj or {}).get("status") or {}).get(key, 0))


def pod_template_hash(template: Obj, collisions: int | None) -> str:
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collisions is not None:
        data += collisions.to_bytes(4, "little") + bytes(4)
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in str(value))


def without_hash(template: Obj) -> Obj:
    """The template but for the hash label (a shallow copy: do not modify it)."""
    meta = template.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    return {**template, "metadata": {**meta, "labels": labels}}


def by_creation(rss: list[Obj]) -> list[Obj]:
    return sorted(rss, key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))


def find_new(deployment: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template, but for the hash label, is the Deployment's."""
    template = without_hash(deployment["spec"]["template"])
    return next(
        (r for r in by_creation(rss) if without_hash(r["spec"]["template"]) == template), None
    )


def revision(rs: Obj) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def is_rolling(deployment: Obj) -> bool:
    return deployment["spec"]["strategy"].get("type") == "RollingUpdate"


def scaled(value: int | str | None, total: int, round_up: bool) -> int:
    """An int-or-percent of ``total`` (``GetScaledValueFromIntOrPercent``)."""
    if isinstance(value, str):
        share = int(value.rstrip("%")) * total / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value or 0)


def fenceposts(deployment: Obj) -> tuple[int, int]:
    rolling = deployment["spec"]["strategy"].get("rollingUpdate") or {}
    desired = replicas(deployment)
    surge = scaled(rolling.get("maxSurge"), desired, True)
    unavailable = scaled(rolling.get("maxUnavailable"), desired, False)
    return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


def max_surge(deployment: Obj) -> int:
    return fenceposts(deployment)[0] if is_rolling(deployment) else 0


def max_unavailable(deployment: Obj) -> int:
    if not is_rolling(deployment) or replicas(deployment) == 0:
        return 0
    return min(fenceposts(deployment)[1], replicas(deployment))


def new_rs_new_replicas(deployment: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    if not is_rolling(deployment):
        return replicas(deployment)
    surge = scaled(
        deployment["spec"]["strategy"]["rollingUpdate"].get("maxSurge"), replicas(deployment), True
    )
    current = sum(replicas(rs) for rs in all_rss)
    most = replicas(deployment) + surge
    if current >= most:
        return replicas(new_rs)
    return replicas(new_rs) + min(most - current, replicas(deployment) - replicas(new_rs))


def active(rss: list[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def _round(value: float) -> int:
    """Go's ``math.Round``: halves away from zero."""
    return math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)


def proportion(rs: Obj, deployment: Obj, to_add: int, added: int) -> int:
    """``GetProportion``: the share of a scaling event that goes to ``rs``."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas(deployment) == 0:
        fraction = -replicas(rs)
    else:
        target = replicas(deployment) + max_surge(deployment)
        annotated = (rs["metadata"].get("annotations") or {}).get(MAX)
        base = int(annotated) if annotated else status_of(deployment, "replicas")
        fraction = _round(replicas(rs) * target / base) - replicas(rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def set_replicas_annotations(rs: Obj, desired: int, most: int) -> bool:
    annotations = rs["metadata"].setdefault("annotations", {})
    wanted = {DESIRED: str(desired), MAX: str(most)}
    changed = any(annotations.get(k) != v for k, v in wanted.items())
    annotations.update(wanted)
    return changed


def set_new_rs_annotations(deployment: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: the Deployment's annotations, the revision (and the
    revisions it served before, on a rollback), and the replica counts of a new one."""
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in (deployment["metadata"].get("annotations") or {}).items():
        if key not in NOT_COPIED and annotations.get(key) != value:
            annotations[key], changed = value, True
    old = annotations.get(REVISION)
    if revision(rs) < new_revision:
        annotations[REVISION], changed = str(new_revision), True
        if old is not None:
            history = [r for r in annotations.get(REVISION_HISTORY, "").split(",") if r] + [old]
            while len(",".join(history)) > HISTORY_CHARS:
                history.pop(0)
            annotations[REVISION_HISTORY] = ",".join(history)
    if not exists:
        desired = replicas(deployment)
        changed = set_replicas_annotations(rs, desired, desired + max_surge(deployment)) or changed
    return changed


def active_or_latest(new: Obj | None, old: list[Obj]) -> Obj | None:
    """``FindActiveOrLatest``: the only active ReplicaSet, the newest if none is active, or
    None when several are (and scaling them is proportional)."""
    newest_first = by_creation(old)[::-1]
    found = active([*newest_first, new])
    if len(found) == 1:
        return found[0]
    if not found:
        return new if new is not None else (newest_first[0] if newest_first else None)
    return None


def saturated(deployment: Obj, rs: Obj | None) -> bool:
    """The new ReplicaSet holds all the Deployment's replicas, all available."""
    if rs is None:
        return False
    desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
    return (
        replicas(rs) == replicas(deployment)
        and desired == str(replicas(deployment))
        and status_of(rs, "availableReplicas") == replicas(deployment)
    )


def proportional_sizes(deployment: Obj, rss: list[Obj]) -> list[tuple[Obj, int]]:
    """The new size of each active ReplicaSet when a Deployment is scaled mid-rollout: the
    change shared in proportion, the biggest first (newer first among equals when growing,
    older when shrinking), and what rounding leaves over to the first."""
    allowed = replicas(deployment) + max_surge(deployment) if replicas(deployment) > 0 else 0
    to_add = allowed - sum(replicas(rs) for rs in rss)
    if to_add > 0:
        rss = sorted(by_creation(rss)[::-1], key=lambda rs: -replicas(rs))
    elif to_add < 0:
        rss = sorted(by_creation(rss), key=lambda rs: -replicas(rs))
    sizes, added = [], 0
    for rs in rss:
        share = proportion(rs, deployment, to_add, added) if to_add else 0
        sizes.append([rs, replicas(rs) + share])
        added += share
    if sizes and to_add:
        sizes[0][1] = max(sizes[0][1] + to_add - added, 0)
    return [(rs, size) for rs, size in sizes]


# --- status and conditions ------------------------------------------------------------------


def condition(type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Obj, type_: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


def set_condition(status: Obj, new: Obj) -> None:
    """``SetDeploymentCondition``: nothing if status and reason are the same; the transition
    time kept if only the reason changes."""
    current = get_condition(status, new["type"])
    if current and (current["status"], current["reason"]) == (new["status"], new["reason"]):
        return
    if current and current["status"] == new["status"]:
        new = {**new, "lastTransitionTime": current["lastTransitionTime"]}
    remove_condition(status, new["type"])
    status.setdefault("conditions", []).append(new)


def remove_condition(status: Obj, type_: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c["type"] != type_]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def has_deadline(deployment: Obj) -> bool:
    return deployment["spec"].get("progressDeadlineSeconds") not in (None, UNLIMITED)


def calculate_status(
    all_rss: list[Obj | None], new_rs: Obj | None, deployment: Obj, now: str
) -> Obj:
    """The status the RSs make (zero counts left out, as Go's ``omitempty`` leaves them)."""
    rss = [rs for rs in all_rss if rs is not None]
    available = sum(status_of(rs, "availableReplicas") for rs in rss)
    old = deployment.get("status") or {}
    status: Obj = {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        "replicas": sum(status_of(rs, "replicas") for rs in rss),
        "updatedReplicas": status_of(new_rs, "replicas"),
        "readyReplicas": sum(status_of(rs, "readyReplicas") for rs in rss),
        "availableReplicas": available,
        "unavailableReplicas": max(sum(replicas(rs) for rs in rss) - available, 0),
        "collisionCount": old.get("collisionCount"),
        "conditions": copy.deepcopy(old.get("conditions")),
    }
    status = {k: v for k, v in status.items() if v}
    if available >= replicas(deployment) - max_unavailable(deployment):
        cond = condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
        )
    else:
        message = "Deployment does not have minimum availability."
        cond = condition("Available", "False", "MinimumReplicasUnavailable", message, now)
    set_condition(status, cond)
    return status


def complete(deployment: Obj, status: Obj) -> bool:
    wanted = replicas(deployment)
    return (
        status.get("updatedReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        and status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 1)
    )


def progressing(deployment: Obj, new: Obj) -> bool:
    old = deployment.get("status") or {}

    def count(status: Obj, key: str) -> int:
        return int(status.get(key, 0))

    old_old = count(old, "replicas") - count(old, "updatedReplicas")
    new_old = count(new, "replicas") - count(new, "updatedReplicas")
    return (
        count(new, "updatedReplicas") > count(old, "updatedReplicas")
        or new_old < old_old
        or count(new, "readyReplicas") > count(old, "readyReplicas")
        or count(new, "availableReplicas") > count(old, "availableReplicas")
    )


def timed_out(deployment: Obj, status: Obj, now: datetime.datetime) -> bool:
    cond = get_condition(status, "Progressing")
    if not has_deadline(deployment) or cond is None or cond["reason"] == "NewReplicaSetAvailable":
        return False
    if cond["reason"] == "ProgressDeadlineExceeded":
        return True
    deadline = datetime.timedelta(seconds=deployment["spec"]["progressDeadlineSeconds"])
    return clock.parse(cond["lastUpdateTime"]) + deadline < now
