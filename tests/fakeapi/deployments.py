"""The Deployment controller (``pkg/controller/deployment``): one ReplicaSet per pod template,
rolling updates and Recreate, scaling (proportional during a rollout), history, and the status.

A sync follows ``syncDeployment``: a paused Deployment or a scaling event (``spec.replicas`` no
longer what the ReplicaSets were sized for) only scales; otherwise the strategy rolls out. The
new ReplicaSet is named ``<deployment>-<pod-template-hash>``; the status, the ``Available`` and
``Progressing`` conditions (with ``ProgressDeadlineExceeded`` by the store's clock) and the
``ReplicaFailure`` of a ReplicaSet are mirrored as in ``progress.go``. Not emulated: adopting and
orphaning by selector, rollbacks through the deprecated annotation.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from tests.fakeapi import progress, rollout
from tests.fakeapi.errors import ApiError
from tests.fakeapi.owners import DEPLOYMENTS, PODS, REPLICASETS, controller_of, controller_ref
from tests.fakeapi.rollout import replicas
from tests.fakeapi.store import Obj

if TYPE_CHECKING:
    from tests.fakeapi.workloads import Workloads

COMPONENT = "deployment-controller"


def sync(ctx: Workloads, namespace: str, name: str) -> None:
    found = ctx.store.find(ctx.store.kinds[DEPLOYMENTS], namespace, name)
    if found is None:
        return
    d = copy.deepcopy(found)
    rss = ctx.owned(REPLICASETS, d)
    try:
        if d["metadata"].get("deletionTimestamp"):
            new, old = _get_all(ctx, d, rss, create=False)
            progress.sync_status(ctx, [*old, new], new, d)
            return
        progress.paused_conditions(ctx, d)
        if d["spec"].get("paused") or _is_scaling_event(ctx, d, rss):
            _scale_only(ctx, d, ctx.owned(REPLICASETS, d))
        elif d["spec"]["strategy"].get("type") == "Recreate":
            _recreate(ctx, d, ctx.owned(REPLICASETS, d))
        else:
            _rolling(ctx, d, ctx.owned(REPLICASETS, d))
    except progress.Requeue:
        pass


# --- writes ---------------------------------------------------------------------------------


def _write_rs(ctx: Workloads, rs: Obj) -> Obj:
    def change(live: Obj) -> Obj:
        meta = {**live["metadata"], "annotations": rs["metadata"].get("annotations") or {}}
        return {**live, "metadata": meta, "spec": rs["spec"]}

    kind = ctx.store.kinds[REPLICASETS]
    try:
        written = ctx.store.update(
            kind, rs["metadata"]["namespace"], rs["metadata"]["name"], change
        )
    except ApiError:
        raise progress.Requeue() from None
    return copy.deepcopy(written)


def _resize(ctx: Workloads, rs: Obj, size: int, d: Obj) -> tuple[bool, Obj]:
    """``scaleReplicaSet``: the size and the replica annotations, if either is not as wanted;
    (whether the size changed, the ReplicaSet now)."""
    desired, most = replicas(d), replicas(d) + rollout.max_surge(d)
    annotations = rs["metadata"].get("annotations") or {}
    stale = annotations.get(rollout.DESIRED) != str(desired) or annotations.get(rollout.MAX) != str(
        most
    )
    if replicas(rs) == size and not stale:
        return False, rs
    changed = copy.deepcopy(rs)
    changed["spec"]["replicas"] = size
    rollout.set_replicas_annotations(changed, desired, most)
    return replicas(rs) != size, _write_rs(ctx, changed)


def _scale_to(ctx: Workloads, rs: Obj, size: int, d: Obj) -> tuple[bool, Obj]:
    """``scaleReplicaSetAndRecordEvent`` (without the Normal event): nothing at the same size."""
    if replicas(rs) == size:
        return False, rs
    return _resize(ctx, rs, size, d)


# --- the ReplicaSets of a Deployment ----------------------------------------------------------


def _get_all(
    ctx: Workloads, d: Obj, rss: list[Obj], *, create: bool
) -> tuple[Obj | None, list[Obj]]:
    """``getAllReplicaSetsAndSyncRevision``: the new ReplicaSet (made if ``create``) and the old."""
    new = rollout.find_new(d, rss)
    old = [rs for rs in rss if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
    return _new_replica_set(ctx, d, new, old, create), old


def _new_replica_set(
    ctx: Workloads, d: Obj, existing: Obj | None, old: list[Obj], create: bool
) -> Obj | None:
    new_revision = max((rollout.revision(rs) for rs in old), default=0) + 1
    annotations = d["metadata"].setdefault("annotations", {})
    if existing is not None:
        meta = existing["metadata"]  # what may change: annotations, minReadySeconds
        annotations_now = dict(meta.get("annotations") or {})
        rs = {**existing, "metadata": {**meta, "annotations": annotations_now}}
        rs["spec"] = dict(existing["spec"])
        changed = rollout.set_new_rs_annotations(d, rs, new_revision, exists=True)
        min_ready = d["spec"].get("minReadySeconds", 0)
        if changed or rs["spec"].get("minReadySeconds", 0) != min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
            return _write_rs(ctx, rs)
        needs = annotations.get(rollout.REVISION) != rs["metadata"]["annotations"].get(
            rollout.REVISION
        )
        annotations[rollout.REVISION] = rs["metadata"]["annotations"].get(rollout.REVISION, "")
        status = d.setdefault("status", {})
        if rollout.has_deadline(d) and rollout.get_condition(status, "Progressing") is None:
            message = f'Found new replica set "{rs["metadata"]["name"]}"'
            rollout.set_condition(
                status,
                rollout.condition(
                    "Progressing", "True", "FoundNewReplicaSet", message, ctx.stamp()
                ),
            )
            needs = True
        if needs:
            progress.write_status(ctx, d)
        return rs
    if not create:
        return None
    return _create_replica_set(ctx, d, old, new_revision)


def _create_replica_set(ctx: Workloads, d: Obj, old: list[Obj], new_revision: int) -> Obj:
    status = d.setdefault("status", {})
    template = copy.deepcopy(d["spec"]["template"])
    pod_hash = rollout.pod_template_hash(template, status.get("collisionCount"))
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), rollout.HASH_LABEL: pod_hash}
    selector = copy.deepcopy(d["spec"]["selector"])
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), rollout.HASH_LABEL: pod_hash}
    name = f"{d['metadata']['name']}-{pod_hash}"
    rs: Obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": d["metadata"]["namespace"],
            "labels": dict(meta["labels"]),
            "ownerReferences": [controller_ref(d)],
        },
        "spec": {"replicas": 0, "selector": selector, "template": template},
    }
    if d["spec"].get("minReadySeconds"):
        rs["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"]
    rs["spec"]["replicas"] = rollout.new_rs_new_replicas(d, [*old, rs], rs)
    rollout.set_new_rs_annotations(d, rs, new_revision, exists=False)
    kind = ctx.store.kinds[REPLICASETS]
    try:
        created, existed = (
            copy.deepcopy(ctx.store.create(kind, d["metadata"]["namespace"], rs)),
            False,
        )
    except ApiError as exc:
        created, existed = _create_failed(ctx, d, name, exc), True
    d["metadata"].setdefault("annotations", {})[rollout.REVISION] = str(new_revision)
    if rollout.has_deadline(d) and not existed:
        message = f'Created new replica set "{name}"'
        cond = rollout.condition(
            "Progressing", "True", "NewReplicaSetCreated", message, ctx.stamp()
        )
        rollout.set_condition(d["status"], cond)
    progress.write_status(ctx, d)
    return created


def _create_failed(ctx: Workloads, d: Obj, name: str, error: ApiError) -> Obj:
    """A ReplicaSet of that name exists: it is ours if it has our template; otherwise the hash
    collides (``collisionCount`` goes up, the next sync hashes anew). Any other refusal is in
    the ``Progressing`` condition (``ReplicaSetCreateError``) and a Warning Event."""
    if error.reason == "AlreadyExists":
        found = ctx.store.find(ctx.store.kinds[REPLICASETS], d["metadata"]["namespace"], name)
        if found is not None:
            owner = controller_of(found)
            same = rollout.without_hash(found["spec"]["template"]) == rollout.without_hash(
                d["spec"]["template"]
            )
            if owner is not None and owner.get("uid") == d["metadata"]["uid"] and same:
                return copy.deepcopy(found)
            d["status"]["collisionCount"] = d["status"].get("collisionCount", 0) + 1
            progress.write_status(ctx, d)
            raise progress.Requeue()
    message = f'Failed to create new replica set "{name}": {error.message}'
    if rollout.has_deadline(d):
        cond = rollout.condition(
            "Progressing", "False", "ReplicaSetCreateError", message, ctx.stamp()
        )
        rollout.set_condition(d["status"], cond)
        progress.write_status(ctx, d)
    ctx.record(d, "ReplicaSetCreateError", message, COMPONENT)
    raise progress.Requeue()


# --- strategies -----------------------------------------------------------------------------


def _rolling(ctx: Workloads, d: Obj, rss: list[Obj]) -> None:
    """Scale the new ReplicaSet up if it may grow, else the old ones down if they may shrink;
    once complete, trim the history."""
    new, old = _get_all(ctx, d, rss, create=True)
    assert new is not None  # or _get_all raised Requeue
    all_rss = [*old, new]
    scaled = _reconcile_new(ctx, all_rss, new, d) or _reconcile_old(
        ctx, all_rss, rollout.active(old), new, d
    )
    if not scaled and rollout.complete(d, d.get("status") or {}):
        _cleanup(ctx, old, d)
    progress.sync_rollout_status(ctx, ctx.owned(REPLICASETS, d), _reread(ctx, new), d)


def _reconcile_new(ctx: Workloads, all_rss: list[Obj], new: Obj, d: Obj) -> bool:
    if replicas(new) == replicas(d):
        return False
    if replicas(new) > replicas(d):
        return _scale_to(ctx, new, replicas(d), d)[0]
    return _scale_to(ctx, new, rollout.new_rs_new_replicas(d, all_rss, new), d)[0]


def _reconcile_old(ctx: Workloads, all_rss: list[Obj], old: list[Obj], new: Obj, d: Obj) -> bool:
    if sum(replicas(rs) for rs in old) == 0:
        return False
    min_available = replicas(d) - rollout.max_unavailable(d)
    new_unavailable = replicas(new) - rollout.status_of(new, "availableReplicas")
    most = sum(replicas(rs) for rs in all_rss) - min_available - new_unavailable
    if most <= 0:
        return False
    old, cleaned = _cleanup_unhealthy(ctx, old, d, most)
    scaled = _scale_down_old(ctx, [*old, new], old, d)
    return cleaned + scaled > 0


def _cleanup_unhealthy(ctx: Workloads, old: list[Obj], d: Obj, most: int) -> tuple[list[Obj], int]:
    """Old ReplicaSets lose their unavailable pods first: that costs no availability."""
    old, total = rollout.by_creation(old), 0
    for i, rs in enumerate(old):
        if total >= most:
            break
        available = rollout.status_of(rs, "availableReplicas")
        if replicas(rs) == 0 or replicas(rs) == available:
            continue
        count = min(most - total, replicas(rs) - available)
        old[i] = _scale_to(ctx, rs, replicas(rs) - count, d)[1]
        total += count
    return old, total


def _scale_down_old(ctx: Workloads, all_rss: list[Obj], old: list[Obj], d: Obj) -> int:
    min_available = replicas(d) - rollout.max_unavailable(d)
    available = sum(rollout.status_of(rs, "availableReplicas") for rs in all_rss)
    if available <= min_available:
        return 0
    total, wanted = 0, available - min_available
    for rs in rollout.by_creation(old):
        if total >= wanted:
            break
        if replicas(rs) == 0:
            continue
        count = min(replicas(rs), wanted - total)
        _scale_to(ctx, rs, replicas(rs) - count, d)
        total += count
    return total


def _recreate(ctx: Workloads, d: Obj, rss: list[Obj]) -> None:
    """Old pods all go before any new one starts."""
    new, old = _get_all(ctx, d, rss, create=False)
    scaled = False
    for rs in rollout.active(old):
        scaled = _scale_to(ctx, rs, 0, d)[0] or scaled
    if scaled or _old_pods_running(ctx, old):
        progress.sync_rollout_status(ctx, ctx.owned(REPLICASETS, d), _reread(ctx, new), d)
        return
    if new is None:
        new, old = _get_all(ctx, d, ctx.owned(REPLICASETS, d), create=True)
        assert new is not None
    _scale_to(ctx, new, replicas(d), d)
    if rollout.complete(d, d.get("status") or {}):
        _cleanup(ctx, old, d)
    progress.sync_rollout_status(ctx, ctx.owned(REPLICASETS, d), _reread(ctx, new), d)


def _old_pods_running(ctx: Workloads, old: list[Obj]) -> bool:
    if sum(rollout.status_of(rs, "replicas") for rs in old):
        return True
    phases = ((p.get("status") or {}).get("phase") for rs in old for p in ctx.owned(PODS, rs))
    return any(phase not in ("Failed", "Succeeded") for phase in phases)


def _reread(ctx: Workloads, rs: Obj | None) -> Obj | None:
    if rs is None:
        return None
    meta = rs["metadata"]
    return ctx.store.find(ctx.store.kinds[REPLICASETS], meta["namespace"], meta["name"])


# --- scaling --------------------------------------------------------------------------------


def _is_scaling_event(ctx: Workloads, d: Obj, rss: list[Obj]) -> bool:
    new, old = _get_all(ctx, d, rss, create=False)
    for rs in rollout.active([*old, new]):
        desired = (rs["metadata"].get("annotations") or {}).get(rollout.DESIRED)
        if desired is not None and desired != str(replicas(d)):
            return True
    return False


def _scale_only(ctx: Workloads, d: Obj, rss: list[Obj]) -> None:
    """``sync``: scale (the active ReplicaSet, or all in proportion), then the plain status."""
    new, old = _get_all(ctx, d, rss, create=False)
    _scale_replica_sets(ctx, d, new, old)
    if d["spec"].get("paused"):
        _cleanup(ctx, old, d)
    progress.sync_status(ctx, ctx.owned(REPLICASETS, d), _reread(ctx, new), d)


def _scale_replica_sets(ctx: Workloads, d: Obj, new: Obj | None, old: list[Obj]) -> None:
    latest = rollout.active_or_latest(new, old)
    if latest is not None:
        if replicas(latest) != replicas(d):
            _scale_to(ctx, latest, replicas(d), d)
    elif rollout.saturated(d, new):
        for rs in rollout.active(old):
            _scale_to(ctx, rs, 0, d)
    elif rollout.is_rolling(d):
        for rs, size in rollout.proportional_sizes(d, rollout.active([*old, new])):
            _resize(ctx, rs, size, d)


def _cleanup(ctx: Workloads, old: list[Obj], d: Obj) -> None:
    """Keep ``revisionHistoryLimit`` old ReplicaSets, deleting the oldest revisions at 0 first."""
    limit = d["spec"].get("revisionHistoryLimit")
    if limit is None or limit == rollout.UNLIMITED:
        return
    alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
    surplus = len(alive) - limit
    if surplus <= 0:
        return
    ordered = sorted(rollout.by_creation(alive), key=rollout.revision)
    for rs in ordered[:surplus]:
        observed = (rs.get("status") or {}).get("observedGeneration", 0)
        if (
            rollout.status_of(rs, "replicas")
            or replicas(rs)
            or rs["metadata"]["generation"] > observed
        ):
            continue
        try:
            ctx.store.delete(
                ctx.store.kinds[REPLICASETS], rs["metadata"]["namespace"], rs["metadata"]["name"]
            )
        except ApiError:
            raise progress.Requeue() from None
