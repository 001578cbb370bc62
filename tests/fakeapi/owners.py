"""Who controls what: controller references and an index of them, for the workload controllers.

The index is kept from the store's events, so a controller finds a Deployment's ReplicaSets or
a ReplicaSet's pods without scanning every object of the namespace (which made a cluster of
thousands of APIs slow).
"""

from __future__ import annotations

from typing import Any

import kmock

from tests.fakeapi.store import Event, Obj, Store

DEPLOYMENTS = kmock.resource("apps/v1/deployments")
REPLICASETS = kmock.resource("apps/v1/replicasets")
PODS = kmock.resource("v1/pods")

Ref = tuple[Any, str, str]  # resource, namespace, name


def controller_of(obj: Obj) -> Obj | None:
    refs = obj["metadata"].get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def controller_ref(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


class Owners:
    """Which objects each object controls, by its uid."""

    def __init__(self) -> None:
        self._owner: dict[Ref, str] = {}
        self._owned: dict[str, set[Ref]] = {}

    def note(self, event: Event) -> None:
        meta = event.object["metadata"]
        ref: Ref = (event.resource, meta.get("namespace", ""), meta["name"])
        previous = self._owner.pop(ref, None)
        if previous is not None:
            self._owned[previous].discard(ref)
            if not self._owned[previous]:
                del self._owned[previous]
        owner = controller_of(event.object)
        if event.type != "DELETED" and owner is not None:
            self._owner[ref] = owner["uid"]
            self._owned.setdefault(owner["uid"], set()).add(ref)

    def owned(self, store: Store, resource: Any, owner: Obj) -> list[Obj]:
        """The stored objects of ``resource`` that ``owner`` controls, by name."""
        kind = store.kinds[resource]
        found = []
        for res, namespace, name in self._owned.get(owner["metadata"]["uid"], ()):
            obj = store.find(kind, namespace, name) if res == resource else None
            if obj is not None:
                found.append(obj)
        return sorted(found, key=lambda o: o["metadata"]["name"])
