"""The controllers a cluster runs that our tests rely on, as store hooks.

- CRDs: creating one serves its resource (discovery, schema, printer columns); deleting it
  removes the resource and its objects.
- Garbage collection: deleting an object deletes its dependents (``ownerReferences``) whose
  owners are all gone, recursively, like the GC's background propagation.
- Namespaces: deleting one deletes what is in it.
- Workloads: Deployments, ReplicaSets and their pods (``workloads``), whose pods tests drive
  with ``set_pods``; ``pod_status`` is the status of a pod in one of ``POD_STATES``.
- EndpointSlices: the ready pods of each Service and their addresses (``endpointslices``).
- Gateways: the status of HTTPRoutes (``gateways``), once a test serves the Gateway API CRDs.
"""

from __future__ import annotations

import contextlib

import kmock

from tests.fakeapi import endpointslices, gateways, pods, workloads
from tests.fakeapi.errors import ApiError
from tests.fakeapi.store import Event, Kind, Obj, Store, now
from tests.fakeapi.workloads import set_pods

__all__ = ["collect_garbage", "empty_namespace", "install", "pod_status", "serve_crd", "set_pods"]

NAMESPACES = kmock.resource("v1/namespaces")
CRDS = kmock.resource("apiextensions.k8s.io/v1/customresourcedefinitions")


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
        meta = event.object["metadata"]
        refs = meta.get("ownerReferences") or []
        if refs and not any(_owner_exists(store, ref, meta.get("namespace")) for ref in refs):
            _delete(store, store.kinds[event.resource], meta)
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


def _owner_exists(store: Store, ref: Obj, namespace: str | None) -> bool:
    """Whether the object a reference names (by apiVersion, kind, name and uid) exists: in the
    dependent's namespace, or cluster-wide for a cluster-scoped kind. A kind not served cannot
    be looked up, and the real collector then leaves the dependent alone."""
    for kind in store.kinds.values():
        if (kind.api_version, kind.kind) == (ref.get("apiVersion"), ref.get("kind")):
            owner = store.find(kind, namespace if kind.namespaced else None, ref.get("name", ""))
            return owner is not None and owner["metadata"]["uid"] == ref.get("uid")
    return True


def empty_namespace(store: Store, event: Event) -> None:
    if event.resource != NAMESPACES or event.type != "DELETED":
        return
    namespace = event.object["metadata"]["name"]
    for kind, obj in store.all_items():
        if obj["metadata"].get("namespace") == namespace:
            _delete(store, kind, obj["metadata"])


def _delete(store: Store, kind: Kind, meta: Obj) -> None:
    """Delete unless an earlier cascade already did (or an admission rule refuses it, which
    the real collector would retry)."""
    if store.find(kind, meta.get("namespace"), meta["name"]) is not None:
        with contextlib.suppress(ApiError):
            store.delete(kind, meta.get("namespace"), meta["name"])


def install(store: Store) -> None:
    """The controllers of one fake cluster, as store hooks in the order they see each change."""
    store.hooks.extend([serve_crd, collect_garbage, empty_namespace])
    workloads.install(store)
    endpointslices.install(store)
    gateways.install(store)


def pod_status(state: str, containers: list[Obj], since: str | None = None) -> Obj:
    """The status of a pod with these containers in ``state`` (``pods.POD_STATES``), dated
    ``since`` (an RFC 3339 time) or now."""
    pod = {"metadata": {"name": "pod", "namespace": "default", "uid": ""}}
    return pods.status(state, {**pod, "spec": {"containers": containers}}, since or now())
