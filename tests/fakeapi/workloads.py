"""The workload controllers of the fake cluster: Deployments own ReplicaSets, which own pods.

As in kube-controller-manager, the store's events feed a work queue of keys (``deployment`` or
``replicaset``, namespace, name) and each key is reconciled from what is stored when its turn
comes, however many changes led there. The queue drains at once, inside the write that fed it,
so a client's write returns with the controllers' consequences in place. Moving the store's
clock or changing its admission rules resyncs every object: that is how a deadline passes and
how a refused pod creation is retried.

Tests drive pods with :func:`set_pods` (the scheduler and the kubelet are not emulated); the
controllers then scale ReplicaSets and write statuses as the real ones would. Of their Events
only the Warnings are recorded (``FailedCreate``, ``ReplicaSetCreateError``): the Normal ones
would double the objects of a large cluster and nothing reads them.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from typing import Any

import kmock

from tests.fakeapi import deployments, pods, replicasets, rollout
from tests.fakeapi.errors import ApiError
from tests.fakeapi.owners import DEPLOYMENTS, PODS, REPLICASETS, Owners, controller_of
from tests.fakeapi.store import Event, Obj, Store

EVENTS = kmock.resource("v1/events")

Key = tuple[str, str, str]  # "deployment" | "replicaset", namespace, name
_MAX_STEPS = 100_000  # a queue that never empties is a bug in these controllers


class Workloads:
    """The store hook of the Deployment and ReplicaSet controllers."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.owners = Owners()
        self._queue: dict[Key, None] = {}
        self._holding = False
        self.addresses = 0  # pod IPs handed out
        store.clock.listeners.append(self.resync)
        store.admission.listeners.append(self.resync)

    def __call__(self, store: Store, event: Event) -> None:
        if event.resource not in (DEPLOYMENTS, REPLICASETS, PODS):
            return
        self.owners.note(event)
        meta = event.object["metadata"]
        namespace = meta.get("namespace", "")
        if event.resource != PODS and event.type != "DELETED":
            self._queue[(_key_kind(event.resource), namespace, meta["name"])] = None
        owner = controller_of(event.object)
        if owner is not None and owner.get("kind") in ("Deployment", "ReplicaSet"):
            self._queue[(owner["kind"].lower(), namespace, owner["name"])] = None
        self.drain()

    def resync(self) -> None:
        for resource in (DEPLOYMENTS, REPLICASETS):
            for obj in self.store.items(self.store.kinds[resource]):
                meta = obj["metadata"]
                self._queue[(_key_kind(resource), meta["namespace"], meta["name"])] = None
        self.drain()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Queue what happens inside, and reconcile once it is all written."""
        holding, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = holding
        self.drain()

    def drain(self) -> None:
        if self._holding:
            return
        self._holding = True
        try:
            for _ in range(_MAX_STEPS):
                if not self._queue:
                    return
                kind, namespace, name = next(iter(self._queue))
                del self._queue[(kind, namespace, name)]
                if kind == "deployment":
                    deployments.sync(self, namespace, name)
                else:
                    replicasets.sync(self, namespace, name)
            raise RuntimeError("the fake cluster's workload controllers do not settle")
        finally:
            self._holding = False

    # --- what the controllers share ---------------------------------------------------------

    def now(self) -> datetime.datetime:
        return self.store.clock.now()

    def stamp(self) -> str:
        return self.store.clock.stamp()

    def owned(self, resource: Any, owner: Obj) -> list[Obj]:
        """What ``owner`` controls, as stored: read them, copy before changing."""
        return self.owners.owned(self.store, resource, owner)

    def record(self, obj: Obj, reason: str, message: str, component: str) -> None:
        """A Warning Event about ``obj``; a repeat of the same one counts up, as the event
        recorder's aggregation does."""
        kind = self.store.kinds[EVENTS]
        meta, now = obj["metadata"], self.stamp()
        for event in self.store.items(kind, meta["namespace"]):
            same = event.get("involvedObject", {}).get("uid") == meta["uid"]
            if same and (event.get("reason"), event.get("message")) == (reason, message):

                def count(e: Obj) -> Obj:
                    return {**e, "count": e.get("count", 1) + 1, "lastTimestamp": now}

                self.store.update(kind, meta["namespace"], event["metadata"]["name"], count)
                return
        stamp = int(self.now().timestamp() * 1e9)
        body = {
            "metadata": {"name": f"{meta['name']}.{stamp:x}", "namespace": meta["namespace"]},
            "involvedObject": {
                "kind": obj["kind"],
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
                "apiVersion": obj["apiVersion"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": "Warning",
            "reportingComponent": component,
            "reportingInstance": "",
        }
        with contextlib.suppress(ApiError):  # e.g. the namespace is being deleted
            self.store.create(kind, meta["namespace"], body)


def _key_kind(resource: Any) -> str:
    return "deployment" if resource == DEPLOYMENTS else "replicaset"


def install(store: Store) -> Workloads:
    workloads = Workloads(store)
    store.hooks.append(workloads)
    return workloads


def installed(store: Store) -> Workloads:
    found = next((h for h in store.hooks if isinstance(h, Workloads)), None)
    if found is None:
        raise LookupError("this store runs no workload controllers")
    return found


def current_replica_set(store: Store, deployment: Obj) -> Obj | None:
    """The ReplicaSet of the Deployment's template (None before the controller made it)."""
    owned = installed(store).owners.owned(store, REPLICASETS, deployment)
    return rollout.find_new(deployment, owned)


def set_pods(
    store: Store,
    namespace: str,
    name: str,
    state: str,
    *,
    count: int | None = None,
    since: datetime.datetime | None = None,
    ips: list[str] | None = None,
) -> list[str]:
    """Put (the first ``count``, by name) pods of the Deployment's current ReplicaSet that are
    still active in ``state`` (``pods.POD_STATES``), dated ``since`` or now; returns their names.
    ``ips``: the pod IPs the kubelet reports, one per pod in name order (a pod keeps the IP it
    has; one whose sandbox is up and has none gets the next of ``10.244.0.0/16``).
    The controllers react once all are written (an evicted pod gets a replacement)."""
    if state not in pods.POD_STATES:
        raise ValueError(f"pod state {state!r} is not one of {pods.POD_STATES}")
    workloads = installed(store)
    deployment = store.find(store.kinds[DEPLOYMENTS], namespace, name)
    if deployment is None:
        raise LookupError(f"deployment {namespace}/{name} does not exist")
    rs = current_replica_set(store, deployment)
    chosen = replicasets.active_pods(workloads, rs)[:count] if rs is not None else []
    when = since.strftime("%Y-%m-%dT%H:%M:%SZ") if since else workloads.stamp()
    kind = store.kinds[PODS]
    with workloads.hold():
        for index, pod in enumerate(chosen):
            new = pods.status(state, pod, when)
            if since is None:
                _keep_transition_times(new, pod.get("status") or {})
            ip = ips[index] if ips is not None and index < len(ips) else _ip(workloads, pod, new)
            if ip is not None:
                new["podIP"], new["podIPs"] = ip, [{"ip": ip}]

            def change(o: Obj, s: Obj = new) -> Obj:
                return {**o, "status": s}

            store.update(kind, namespace, pod["metadata"]["name"], change, subresource="status")
    return [p["metadata"]["name"] for p in chosen]


def _ip(workloads: Workloads, pod: Obj, status: Obj) -> str | None:
    """The pod's IP: the one it has, else a new one once its sandbox is up (as the CNI gives)."""
    old = (pod.get("status") or {}).get("podIP")
    started = any(
        c["type"] == "PodReadyToStartContainers" and c["status"] == "True"
        for c in status.get("conditions") or []
    )
    if old or not started:
        return old  # type: ignore[no-any-return]
    workloads.addresses += 1
    return f"10.244.{workloads.addresses // 256}.{workloads.addresses % 256}"


def _keep_transition_times(new: Obj, old: Obj) -> None:
    """A condition that does not change keeps its time, as the kubelet keeps it."""
    before = {c["type"]: c for c in old.get("conditions") or []}
    for cond in new.get("conditions") or []:
        previous = before.get(cond["type"])
        if previous and previous["status"] == cond["status"]:
            cond["lastTransitionTime"] = previous["lastTransitionTime"]
