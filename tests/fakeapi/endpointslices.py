"""The EndpointSlice controller of the fake cluster: which pods of a Service are ready, where.

As kube-controller-manager's: for every Service with a selector, one ``discovery.k8s.io/v1``
EndpointSlice per port mapping (``<service>-<hash>``, labelled
``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by``, plus the
Service's own labels, owned by the Service) listing the selected pods that have an IP, each
with ``conditions.ready`` (the pod's ``Ready`` condition, false while it terminates),
``serving`` and ``terminating``, and a ``targetRef`` to the pod. A numeric ``targetPort`` is
used as it is; a named one is looked up in the pod's container ports, so pods whose ports
differ land in different slices. A slice is rewritten only when what it lists changes.
Not emulated: topology hints, zones, the 100-endpoint limit per slice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import kmock

from tests.fakeapi.store import Event, Obj, Store

SLICES = kmock.resource("discovery.k8s.io/v1/endpointslices")
SERVICES = kmock.resource("v1/services")
PODS = kmock.resource("v1/pods")
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"


def sync(store: Store, event: Event) -> None:
    """The store hook: recompute the slices of the Services an event may concern."""
    if event.resource not in (SERVICES, PODS):
        return
    meta = event.object["metadata"]
    namespace = meta.get("namespace", "")
    services = store.kinds[SERVICES]
    if event.resource == SERVICES:
        _sync_service(store, namespace, meta["name"])
        return
    for service in store.items(services, namespace):
        selector = (service.get("spec") or {}).get("selector") or {}
        if selector and _selects(selector, event.object):
            _sync_service(store, namespace, service["metadata"]["name"])


def _selects(selector: dict[str, str], pod: Obj) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _port(service_port: Obj, pod: Obj) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def _endpoint(pod: Obj) -> Obj:
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    ready = _ready(pod)
    meta = pod["metadata"]
    return {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {
            "ready": ready and not terminating,
            "serving": ready,
            "terminating": terminating,
        },
        "targetRef": {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }


def _desired(store: Store, service: Obj) -> dict[str, tuple[list[Obj], list[Obj]]]:
    """Slice name -> (ports, endpoints) of the Service, one slice per port mapping."""
    namespace, name = service["metadata"]["namespace"], service["metadata"]["name"]
    selector = service["spec"].get("selector") or {}
    groups: dict[str, tuple[list[Obj], list[Obj]]] = {}
    if not selector:
        return groups
    for pod in sorted(
        store.items(store.kinds[PODS], namespace), key=lambda p: p["metadata"]["name"]
    ):
        if not _selects(selector, pod) or not (pod.get("status") or {}).get("podIP"):
            continue
        ports = []
        for port in service["spec"].get("ports") or []:
            number = _port(port, pod)
            if number is not None:
                ports.append({"name": port.get("name", ""), "port": number, "protocol": "TCP"})
        digest = hashlib.sha256(json.dumps(ports, sort_keys=True).encode()).hexdigest()[:5]
        group = groups.setdefault(f"{name}-{digest}", (ports, []))
        group[1].append(_endpoint(pod))
    return groups


def _sync_service(store: Store, namespace: str, name: str) -> None:
    kind = store.kinds.get(SLICES)
    if kind is None:
        return
    service = store.find(store.kinds[SERVICES], namespace, name)
    wanted = {} if service is None else _desired(store, service)
    for existing in store.items(kind, namespace):
        labels = existing["metadata"].get("labels") or {}
        gone = existing["metadata"]["name"] not in wanted
        if labels.get(SERVICE_NAME) == name and labels.get(MANAGED_BY) == CONTROLLER and gone:
            store.delete(kind, namespace, existing["metadata"]["name"])
    if service is None:
        return
    for slice_name, (ports, endpoints) in wanted.items():
        body = _slice(service, slice_name, ports, endpoints)
        found = store.find(kind, namespace, slice_name)
        if found is None:
            store.create(kind, namespace, body)
        elif (found.get("endpoints"), found.get("ports")) != (endpoints, ports):

            def change(obj: Obj, b: Obj = body) -> Obj:
                return {**obj, "endpoints": b["endpoints"], "ports": b["ports"]}

            store.update(kind, namespace, slice_name, change)


def _slice(service: Obj, name: str, ports: list[Obj], endpoints: list[Obj]) -> Obj:
    meta = service["metadata"]
    labels: dict[str, Any] = {**(meta.get("labels") or {}), SERVICE_NAME: meta["name"]}
    labels[MANAGED_BY] = CONTROLLER
    owner = {
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": labels, "ownerReferences": [owner]},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }


def install(store: Store) -> None:
    store.hooks.append(sync)
