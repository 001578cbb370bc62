"""The status of a Deployment and the progress it shows (``progress.go``): counts from its
ReplicaSets, ``Available``, ``Progressing`` (``NewReplicaSetAvailable``, ``ReplicaSetUpdated``,
``ProgressDeadlineExceeded`` once no progress was seen for ``progressDeadlineSeconds`` by the
store's clock, ``DeploymentPaused``/``DeploymentResumed``) and the ``ReplicaFailure`` of a
ReplicaSet, mirrored; written through the status subresource with the revision annotation.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from tests.fakeapi import rollout
from tests.fakeapi.errors import ApiError
from tests.fakeapi.owners import DEPLOYMENTS
from tests.fakeapi.store import Obj

if TYPE_CHECKING:
    from tests.fakeapi.workloads import Workloads


class Requeue(Exception):
    """A write failed: stop this sync; a later event syncs again (the real one requeues)."""


def write_status(ctx: Workloads, d: Obj) -> None:
    """``UpdateStatus``: the status and the annotations (the revision) of ``d``, as it is now."""

    def change(live: Obj) -> Obj:
        meta = {**live["metadata"], "annotations": d["metadata"].get("annotations")}
        return {**live, "metadata": meta, "status": d.get("status") or {}}

    kind = ctx.store.kinds[DEPLOYMENTS]
    meta = d["metadata"]
    try:
        written = ctx.store.update(
            kind, meta["namespace"], meta["name"], change, subresource="status"
        )
    except ApiError:
        raise Requeue() from None
    d["metadata"], d["status"] = (
        copy.deepcopy(written["metadata"]),
        copy.deepcopy(written.get("status") or {}),
    )


def paused_conditions(ctx: Workloads, d: Obj) -> None:
    """A pause (and its end) is in ``Progressing``, so a long pause is no missed deadline."""
    if not rollout.has_deadline(d):
        return
    status = d.setdefault("status", {})
    cond = rollout.get_condition(status, "Progressing")
    if cond is not None and cond["reason"] == "ProgressDeadlineExceeded":
        return
    paused_shown = cond is not None and cond["reason"] == "DeploymentPaused"
    if d["spec"].get("paused") and not paused_shown:
        new = rollout.condition(
            "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", ctx.stamp()
        )
    elif not d["spec"].get("paused") and paused_shown:
        new = rollout.condition(
            "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", ctx.stamp()
        )
    else:
        return
    rollout.set_condition(status, new)
    write_status(ctx, d)


def sync_status(ctx: Workloads, all_rss: list[Obj | None], new: Obj | None, d: Obj) -> None:
    status = rollout.calculate_status(all_rss, new, d, ctx.stamp())
    if status != (d.get("status") or {}):
        d["status"] = status
        write_status(ctx, d)


def sync_rollout_status(ctx: Workloads, all_rss: list[Obj], new: Obj | None, d: Obj) -> None:
    """``syncRolloutStatus``: the status, and progress (or its lack) in ``Progressing``."""
    now = ctx.stamp()
    status = rollout.calculate_status(all_rss, new, d, now)
    if not rollout.has_deadline(d):
        rollout.remove_condition(status, "Progressing")
    current = rollout.get_condition(d.get("status") or {}, "Progressing")
    settled = (
        status.get("replicas", 0) == status.get("updatedReplicas", 0)
        and current is not None
        and current["reason"] == "NewReplicaSetAvailable"
    )
    subject = (
        f'ReplicaSet "{new["metadata"]["name"]}"'
        if new
        else f'Deployment "{d["metadata"]["name"]}"'
    )
    if rollout.has_deadline(d) and not settled:
        if rollout.complete(d, status):
            message = f"{subject} has successfully progressed."
            rollout.set_condition(
                status,
                rollout.condition("Progressing", "True", "NewReplicaSetAvailable", message, now),
            )
        elif rollout.progressing(d, status):
            cond = rollout.condition(
                "Progressing", "True", "ReplicaSetUpdated", f"{subject} is progressing.", now
            )
            if current is not None:
                if current["status"] == "True":
                    cond["lastTransitionTime"] = current["lastTransitionTime"]
                rollout.remove_condition(status, "Progressing")
            rollout.set_condition(status, cond)
        elif rollout.timed_out(d, status, ctx.now()):
            message = f"{subject} has timed out progressing."
            rollout.set_condition(
                status,
                rollout.condition("Progressing", "False", "ProgressDeadlineExceeded", message, now),
            )
    failures = _replica_failures(all_rss, new)
    if failures:
        rollout.set_condition(status, failures[0])
    else:
        rollout.remove_condition(status, "ReplicaFailure")
    if status != (d.get("status") or {}):
        d["status"] = status
        write_status(ctx, d)


def _replica_failures(all_rss: list[Obj], new: Obj | None) -> list[Obj]:
    """The new ReplicaSet's ``ReplicaFailure`` (else an old one's), as a Deployment condition."""
    for rss in ([new] if new is not None else [], all_rss):
        found = [
            {
                "type": c["type"],
                "status": c["status"],
                "lastUpdateTime": c["lastTransitionTime"],
                "lastTransitionTime": c["lastTransitionTime"],
                "reason": c["reason"],
                "message": c["message"],
            }
            for rs in rss
            for c in (rs.get("status") or {}).get("conditions") or []
            if c["type"] == "ReplicaFailure"
        ]
        if found:
            return found
    return []
