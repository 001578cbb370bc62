"""A minimal Gateway API controller for the fake cluster: it writes an HTTPRoute's
``status.parents[]`` as a real one would (``pkg/...`` of any conformant implementation), for
each ``parentRefs`` entry that names a Gateway, under its own ``controllerName``.

- ``Accepted``: ``False``/``NoMatchingParent`` when the Gateway does not exist (or its kind is
  not served), ``False``/``NotAllowedByListeners`` when no listener's ``allowedRoutes`` takes
  routes from the route's namespace (``Same``, the default, ``All`` or ``None``; a ``Selector``
  is taken as allowing it: namespace labels are not read), else ``True``/``Accepted``.
- ``ResolvedRefs``: ``False``/``BackendNotFound`` when a ``backendRefs`` Service does not exist,
  ``False``/``RefNotPermitted`` for one in another namespace (no ReferenceGrants here), else
  ``True``/``ResolvedRefs``.

Each condition carries the route's ``observedGeneration`` and keeps its ``lastTransitionTime``
while its status holds. A route is looked at again when it, a Gateway or a Service changes. Not
emulated: hostnames against listeners, GatewayClasses, the Gateway's own status, traffic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kmock
import yaml

from tests.fakeapi.conditions import Condition, conditions
from tests.fakeapi.store import Event, Obj, Store

GROUP = "gateway.networking.k8s.io"
HTTPROUTES = kmock.resource(f"{GROUP}/v1/httproutes")
GATEWAYS = kmock.resource(f"{GROUP}/v1/gateways")
SERVICES = kmock.resource("v1/services")
CONTROLLER = "fake.cortex.dev/gateway-controller"
CRDS_FILE = Path(__file__).parent / "crds" / "gateway-api.yaml"


def crds() -> list[Obj]:
    """The Gateway and HTTPRoute CRDs (``crds/gateway-api.yaml``), to create in a fake cluster."""
    return [doc for doc in yaml.safe_load_all(CRDS_FILE.read_text()) if doc]


def sync(store: Store, event: Event) -> None:
    """The store hook: recompute the status of the routes an event may concern."""
    kind = store.kinds.get(HTTPROUTES)
    if kind is None:
        return
    if event.resource == HTTPROUTES:
        if event.type != "DELETED":
            meta = event.object["metadata"]
            _sync_route(store, meta["namespace"], meta["name"])
    elif event.resource in (GATEWAYS, SERVICES) and event.type in ("ADDED", "DELETED"):
        for route in store.items(kind):
            _sync_route(store, route["metadata"]["namespace"], route["metadata"]["name"])


def _accepted(store: Store, namespace: str, ref: Obj) -> Condition:
    where = f"{ref.get('namespace') or namespace}/{ref['name']}"
    kind = store.kinds.get(GATEWAYS)
    gateway = (
        None if kind is None else store.find(kind, ref.get("namespace") or namespace, ref["name"])
    )
    if gateway is None:
        return False, "NoMatchingParent", f"Gateway {where} not found"
    froms = [
        ((listener.get("allowedRoutes") or {}).get("namespaces") or {}).get("from", "Same")
        for listener in gateway["spec"].get("listeners") or []
    ]
    same = gateway["metadata"]["namespace"] == namespace
    if not any(f in ("All", "Selector") or (f == "Same" and same) for f in froms):
        message = f"no listener of Gateway {where} allows routes from namespace {namespace}"
        return False, "NotAllowedByListeners", message
    return True, "Accepted", "Route is accepted"


def _resolved(store: Store, namespace: str, route: Obj) -> Condition:
    services = store.kinds[SERVICES]
    for rule in route["spec"].get("rules") or []:
        for backend in rule.get("backendRefs") or []:
            if (backend.get("group") or "", backend.get("kind") or "Service") != ("", "Service"):
                return False, "InvalidKind", f"backendRef {backend['name']}: not a Service"
            if backend.get("namespace", namespace) != namespace:
                message = f"backendRef to Service {backend['namespace']}/{backend['name']} "
                return False, "RefNotPermitted", message + "needs a ReferenceGrant"
            if store.find(services, namespace, backend["name"]) is None:
                message = f"Service {namespace}/{backend['name']} not found"
                return False, "BackendNotFound", message
    return True, "ResolvedRefs", "All references resolved"


def _sync_route(store: Store, namespace: str, name: str) -> None:
    kind = store.kinds[HTTPROUTES]
    route = store.find(kind, namespace, name)
    if route is None:
        return
    generation = int(route["metadata"].get("generation") or 1)
    previous = {
        _ref_key(p.get("parentRef") or {}, namespace): p
        for p in (route.get("status") or {}).get("parents") or []
        if p.get("controllerName") == CONTROLLER
    }
    resolved = _resolved(store, namespace, route)
    parents: list[Obj] = []
    for ref in route["spec"].get("parentRefs") or []:
        if (ref.get("group", GROUP), ref.get("kind", "Gateway")) != (GROUP, "Gateway"):
            continue
        wanted = {"Accepted": _accepted(store, namespace, ref), "ResolvedRefs": resolved}
        before = previous.get(_ref_key(ref, namespace), {}).get("conditions") or []
        parent_ref = {k: ref[k] for k in ("group", "kind", "namespace", "name") if k in ref}
        parents.append(
            {
                "parentRef": parent_ref,
                "controllerName": CONTROLLER,
                "conditions": conditions(wanted, before, store.clock.stamp(), generation),
            }
        )
    current = (route.get("status") or {}).get("parents") or []
    if _essence(current) == _essence(parents):
        return

    def change(obj: Obj) -> Obj:
        return {**obj, "status": {"parents": parents}}

    store.update(kind, namespace, name, change, subresource="status")


def _ref_key(ref: Obj, namespace: str) -> tuple[str, str]:
    return ref.get("namespace") or namespace, ref.get("name", "")


def _essence(parents: list[Any]) -> list[Any]:
    """The parents without their times: what makes a status write news."""
    return [
        {
            **p,
            "conditions": [
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in p.get("conditions") or []
            ],
        }
        for p in parents
    ]


def install(store: Store) -> None:
    store.hooks.append(sync)
