"""The ReplicaSet controller (``pkg/controller/replicaset``): as many active pods as
``spec.replicas``, and the status they make.

Pods are created from the template (``generateName: <replicaset>-``, a controller reference) in
slow-start batches of 1, 2, 4... that stop at the first refusal; the refusal becomes the
``ReplicaFailure`` condition (reason ``FailedCreate``, the API server's message) and a Warning
Event, and is retried on the next sync. Surplus pods are deleted worst first (unscheduled,
pending, not ready, restarted most, newest). A pod is available once it has been ready for
``minReadySeconds`` by the store's clock. Failed or Succeeded pods are not active: an evicted
pod stays, and a new one replaces it.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from tests.fakeapi import clock, pods, rollout
from tests.fakeapi.errors import ApiError
from tests.fakeapi.owners import PODS, REPLICASETS, controller_ref
from tests.fakeapi.store import Obj

if TYPE_CHECKING:
    from tests.fakeapi.workloads import Workloads

BURST = 500  # the most pods one sync creates or deletes
_COPIED = ("labels", "annotations", "finalizers")  # from the template's metadata
COMPONENT = "replicaset-controller"


def sync(ctx: Workloads, namespace: str, name: str) -> None:
    store = ctx.store
    found = store.find(store.kinds[REPLICASETS], namespace, name)
    if found is None:
        return
    rs, error = found, None
    if not rs["metadata"].get("deletionTimestamp"):
        error = _manage(ctx, rs, active_pods(ctx, rs))
    status = calculate_status(ctx, rs, active_pods(ctx, rs), error)
    if status != rs.get("status"):

        def change(live: Obj) -> Obj:
            return {**live, "status": status}

        store.update(store.kinds[REPLICASETS], namespace, name, change, subresource="status")


def active_pods(ctx: Workloads, rs: Obj | None) -> list[Obj]:
    """The pods the ReplicaSet controls that neither ended nor are being deleted (as stored)."""
    if rs is None:
        return []
    return [
        p
        for p in ctx.owned(PODS, rs)
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        and not p["metadata"].get("deletionTimestamp")
    ]


def ready(pod: Obj) -> Obj | None:
    """The pod's Ready condition when it is True."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready" and c["status"] == "True"), None)


def _manage(ctx: Workloads, rs: Obj, active: list[Obj]) -> ApiError | None:
    diff = len(active) - rollout.replicas(rs)
    if diff < 0:
        return _create(ctx, rs, min(-diff, BURST))
    if diff > 0:
        error = None
        for pod in sorted(active, key=_deletion_rank)[: min(diff, BURST)]:
            try:
                ctx.store.delete(
                    ctx.store.kinds[PODS], rs["metadata"]["namespace"], pod["metadata"]["name"]
                )
            except ApiError as exc:
                error = error or exc
        return error
    return None


def _create(ctx: Workloads, rs: Obj, count: int) -> ApiError | None:
    """``slowStartBatch``: batches of 1, 2, 4, ... pods, none after a batch with a failure."""
    template = rs["spec"]["template"]
    meta = template.get("metadata") or {}
    namespace = rs["metadata"]["namespace"]
    batch, done = 1, 0
    while done < count:
        size = min(batch, count - done)
        error = None
        for _ in range(size):
            body = {
                "metadata": {
                    "generateName": f"{rs['metadata']['name']}-",
                    **{k: copy.deepcopy(meta[k]) for k in _COPIED if meta.get(k)},
                    "ownerReferences": [controller_ref(rs)],
                },
                "spec": copy.deepcopy(template.get("spec") or {}),
            }
            body["status"] = pods.initial(body, ctx.stamp())
            try:
                ctx.store.create(ctx.store.kinds[PODS], namespace, body)
            except ApiError as exc:
                error = error or exc
                ctx.record(rs, "FailedCreate", f"Error creating: {exc.message}", COMPONENT)
        if error is not None:
            return error
        done, batch = done + size, batch * 2
    return None


def _deletion_rank(pod: Obj) -> tuple[bool, int, bool, float, int, float]:
    """Sorts the pods to delete first first (``ActivePodsWithRanks``, without node colocation)."""
    status = pod.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled", {}).get("status") == "True"
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", ""), 0)
    ready_since = ready(pod)
    since = -clock.parse(ready_since["lastTransitionTime"]).timestamp() if ready_since else 0.0
    restarts = max(
        (c.get("restartCount", 0) for c in status.get("containerStatuses") or []), default=0
    )
    created = clock.parse(pod["metadata"]["creationTimestamp"]).timestamp()
    return (scheduled, phase, ready_since is not None, since, -restarts, -created)


def calculate_status(ctx: Workloads, rs: Obj, active: list[Obj], error: ApiError | None) -> Obj:
    """The status: counts of the active pods, and ``ReplicaFailure`` while pods cannot be made."""
    labels = (rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
    min_ready = rs["spec"].get("minReadySeconds", 0)
    now = ctx.now()
    ready_pods = [(p, c) for p in active if (c := ready(p)) is not None]
    available = [
        p
        for p, c in ready_pods
        if min_ready == 0
        or clock.parse(c["lastTransitionTime"]).timestamp() + min_ready < now.timestamp()
    ]
    old = rs.get("status") or {}
    conditions = copy.deepcopy(old.get("conditions") or [])
    failure = next((c for c in conditions if c["type"] == "ReplicaFailure"), None)
    if error is not None and failure is None:
        diff = len(active) - rollout.replicas(rs)
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        conditions.append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": ctx.stamp(),
                "reason": reason,
                "message": error.message,
            }
        )
    elif error is None and failure is not None:
        conditions.remove(failure)
    status: Obj = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(
            1
            for p in active
            if all(p["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
        ),
        "readyReplicas": len(ready_pods),
        "availableReplicas": len(available),
        "observedGeneration": rs["metadata"].get("generation", 1),
        "conditions": conditions,
    }
    return {k: v for k, v in status.items() if v or k == "replicas"}
