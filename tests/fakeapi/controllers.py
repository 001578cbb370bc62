"""The controllers a cluster runs that our tests rely on, as store hooks, plus test drivers.

- CRDs: creating one serves its resource (discovery, schema, printer columns); deleting it
  removes the resource and its objects.
- Garbage collection: deleting an object deletes its dependents (``ownerReferences``) whose
  owners are all gone, recursively, like the GC's background propagation.
- Namespaces: deleting one deletes what is in it.
- Deployments: a tiny controller keeps ``spec.replicas`` pods of the current template (pods
  owned by the Deployment; no ReplicaSets) and the Deployment's status in step with them.
  Tests drive the pods: ready, image pull failing, OOM-killed, crash-looping, unschedulable.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import random
import string
from typing import Any

import kmock

from tests.fakeapi.store import Event, Hook, Kind, Obj, Store, now

DEPLOYMENTS = kmock.resource("apps/v1/deployments")
PODS = kmock.resource("v1/pods")
NAMESPACES = kmock.resource("v1/namespaces")
CRDS = kmock.resource("apiextensions.k8s.io/v1/customresourcedefinitions")

POD_STATES = ("pending", "ready", "image-pull", "oom", "crash", "unschedulable")


def serve_crd(store: Store, event: Event) -> None:
    """Register (or unregister) the resources a CRD defines."""
    if event.resource != CRDS:
        return
    spec = event.object.get("spec", {})
    names = spec.get("names", {})
    for version in spec.get("versions", []):
        resource = kmock.resource(spec["group"], version["name"], names["plural"])
        if event.type == "DELETED" or not version.get("served", True):
            kind = store.kinds.get(resource)
            if kind is not None:
                for obj in store.items(kind):
                    _delete(store, kind, obj["metadata"])
                del store.kinds[resource]
            continue
        store.kinds[resource] = Kind(
            resource=resource,
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            subresources=frozenset((version.get("subresources") or {}).keys()),
            short_names=tuple(names.get("shortNames", ())),
            categories=tuple(names.get("categories", ())),
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            columns=list(version.get("additionalPrinterColumns", [])),
            custom=True,
        )
    if event.type == "ADDED":
        established = {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}
        status = {"acceptedNames": names, "conditions": [established]}
        name = event.object["metadata"]["name"]
        store.update(
            store.kinds[CRDS], None, name, lambda o: {**o, "status": status}, subresource="status"
        )


def collect_garbage(store: Store, event: Event) -> None:
    """Delete the dependents of a deleted object once none of their owners is left, and an
    object created with owners that are all gone already (as the real garbage collector does:
    e.g. a child a controller re-creates in a race with its owner's deletion)."""
    if event.type == "ADDED":
        refs = event.object["metadata"].get("ownerReferences") or []
        if refs:
            live = {obj["metadata"]["uid"] for _, obj in store.all_items()}
            if not {ref.get("uid") for ref in refs} & live:
                _delete(store, store.kinds[event.resource], event.object["metadata"])
        return
    if event.type != "DELETED":
        return
    uid = event.object["metadata"]["uid"]
    dependents = [
        (kind, obj["metadata"])
        for kind, obj in store.all_items()
        if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
    ]
    if not dependents:
        return
    live = {obj["metadata"]["uid"] for _, obj in store.all_items()}
    for kind, meta in dependents:
        owners = {ref.get("uid") for ref in meta.get("ownerReferences") or []}
        if not owners & live:
            _delete(store, kind, meta)


def empty_namespace(store: Store, event: Event) -> None:
    if event.resource != NAMESPACES or event.type != "DELETED":
        return
    namespace = event.object["metadata"]["name"]
    for kind, obj in store.all_items():
        if obj["metadata"].get("namespace") == namespace:
            _delete(store, kind, obj["metadata"])


def _delete(store: Store, kind: Kind, meta: Obj) -> None:
    """Delete unless an earlier cascade already did."""
    if store.find(kind, meta.get("namespace"), meta["name"]) is not None:
        store.delete(kind, meta.get("namespace"), meta["name"])


# --- Deployments -------------------------------------------------------------------------


def template_hash(deployment: Obj) -> str:
    template = json.dumps(deployment["spec"].get("template", {}), sort_keys=True)
    return hashlib.sha256(template.encode()).hexdigest()[:10]


def pods_of(store: Store, deployment: Obj) -> list[Obj]:
    """The pods a Deployment owns, by name (stored objects: do not modify them)."""
    uid = deployment["metadata"]["uid"]
    pods = store.items(store.kinds[PODS], deployment["metadata"]["namespace"])
    owned = [p for p in pods if any(r.get("uid") == uid for r in p["metadata"]["ownerReferences"])]
    return sorted(owned, key=lambda p: p["metadata"]["name"])


class DeploymentController:
    """Reacts to Deployment writes (and pod deletions) by reconciling the Deployment."""

    def __init__(self) -> None:
        self._busy: set[tuple[str, str]] = set()  # its own writes must not re-enter

    def __call__(self, store: Store, event: Event) -> None:
        meta = event.object["metadata"]
        if event.resource == DEPLOYMENTS and event.type != "DELETED":
            self.reconcile(store, meta["namespace"], meta["name"])
        elif event.resource == PODS and event.type == "DELETED":
            for ref in meta.get("ownerReferences", []):
                if ref.get("kind") == "Deployment":
                    self.reconcile(store, meta["namespace"], ref["name"])

    def reconcile(self, store: Store, namespace: str, name: str) -> None:
        if (namespace, name) in self._busy:
            return
        self._busy.add((namespace, name))
        try:
            reconcile(store, namespace, name)
        finally:
            self._busy.discard((namespace, name))


def reconcile(store: Store, namespace: str, name: str) -> None:
    """Pods of the current template, as many as ``spec.replicas``; then the status."""
    kind = store.kinds[DEPLOYMENTS]
    deployment = store.find(kind, namespace, name)
    if deployment is None or deployment["metadata"].get("deletionTimestamp"):
        return
    wanted = deployment["spec"].get("replicas", 1)
    current = template_hash(deployment)
    pods = pods_of(store, deployment)
    for pod in pods:
        if pod["metadata"]["labels"].get("pod-template-hash") != current:
            store.delete(store.kinds[PODS], namespace, pod["metadata"]["name"])
    pods = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == current]
    for pod in pods[wanted:]:
        store.delete(store.kinds[PODS], namespace, pod["metadata"]["name"])
    for _ in range(wanted - len(pods)):
        store.create(store.kinds[PODS], namespace, _new_pod(deployment, current))
    _write_status(store, namespace, name)


def _new_pod(deployment: Obj, pod_hash: str) -> Obj:
    template = copy.deepcopy(deployment["spec"].get("template", {}))
    meta = template.get("metadata", {})
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    owner = deployment["metadata"]
    containers = template.get("spec", {}).get("containers", [])
    return {
        "metadata": {
            "name": f"{owner['name']}-{pod_hash[:9]}-{suffix}",
            "labels": {**meta.get("labels", {}), "pod-template-hash": pod_hash},
            "annotations": meta.get("annotations", {}),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": owner["name"],
                    "uid": owner["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template.get("spec", {}),
        "status": pod_status("pending", containers),
    }


def pod_status(state: str, containers: list[Obj], since: str | None = None) -> Obj:
    """The status of a pod in one of ``POD_STATES``; ``since`` dates the condition."""
    if state not in POD_STATES:
        raise ValueError(f"pod state {state!r} is not one of {POD_STATES}")
    when = since or now()
    ready = state == "ready"
    waiting: dict[str, Any] = {
        "pending": {"reason": "ContainerCreating"},
        "image-pull": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"},
        "oom": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"},
        "crash": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"},
        "unschedulable": {"reason": "ContainerCreating"},
    }.get(state, {})
    statuses = []
    for container in containers:
        status: Obj = {
            "name": container.get("name", "app"),
            "image": container.get("image", ""),
            "ready": ready,
            "restartCount": 3 if state in ("oom", "crash") else 0,
            "state": {"running": {"startedAt": when}} if ready else {"waiting": waiting},
        }
        if state in ("oom", "crash"):
            reason, code = ("OOMKilled", 137) if state == "oom" else ("Error", 1)
            status["lastState"] = {
                "terminated": {"reason": reason, "exitCode": code, "finishedAt": when}
            }
        statuses.append(status)
    scheduled: Obj = {"type": "PodScheduled", "status": "True", "lastTransitionTime": when}
    if state == "unschedulable":
        scheduled = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            "lastTransitionTime": when,
        }
    result: Obj = {
        "phase": "Running" if ready or state in ("oom", "crash") else "Pending",
        "conditions": [
            scheduled,
            {"type": "Ready", "status": str(ready), "lastTransitionTime": when},
        ],
    }
    if state != "unschedulable":
        result["containerStatuses"] = statuses
    return result


def set_pods(
    store: Store,
    namespace: str,
    name: str,
    state: str,
    *,
    count: int | None = None,
    since: datetime.datetime | None = None,
) -> list[str]:
    """Put (the first ``count``) pods of a Deployment in ``state``; returns their names."""
    deployment = store.find(store.kinds[DEPLOYMENTS], namespace, name)
    if deployment is None:
        raise LookupError(f"deployment {namespace}/{name} does not exist")
    when = since.strftime("%Y-%m-%dT%H:%M:%SZ") if since else None
    pods = pods_of(store, deployment)[:count]
    for pod in pods:
        containers = pod["spec"].get("containers", [])
        status = pod_status(state, containers, when)
        store.update(
            store.kinds[PODS],
            namespace,
            pod["metadata"]["name"],
            lambda o, s=status: {**o, "status": s},
            subresource="status",
        )
    _write_status(store, namespace, name)
    return [p["metadata"]["name"] for p in pods]


def _write_status(store: Store, namespace: str, name: str) -> None:
    kind = store.kinds[DEPLOYMENTS]
    deployment = store.find(kind, namespace, name)
    if deployment is None:
        return
    pods = pods_of(store, deployment)
    current = template_hash(deployment)
    ready = sum(
        1
        for p in pods
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    )
    replicas = deployment["spec"].get("replicas", 1)
    available = "True" if ready >= replicas else "False"
    status = {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        "replicas": len(pods),
        "updatedReplicas": sum(
            1 for p in pods if p["metadata"]["labels"].get("pod-template-hash") == current
        ),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(replicas - ready, 0),
        "conditions": [{"type": "Available", "status": available}],
    }
    if deployment.get("status") != status:
        store.update(kind, namespace, name, lambda o: {**o, "status": status}, subresource="status")


def hooks() -> list[Hook]:
    """The controllers of one fake cluster, in the order they see each change."""
    return [serve_crd, collect_garbage, empty_namespace, DeploymentController()]
