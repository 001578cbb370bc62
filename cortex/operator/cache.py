"""The operator's view of the cluster: the latest RealtimeAPIs, children and pods it was told of.

Fed by kopf's watch events (:meth:`Cache.observe`), read by the reconcile passes. Not kopf's
indexes: kopf holds every event handler until every indexed object is indexed, each object
waking all the others (quadratic: minutes for a restart with thousands of APIs).

What the watches do not say yet, a pass learns by listing (``handlers.Pass.prime``): the first
pass in a namespace lists the labelled children and pods of that namespace once, so a restarted
operator needs no request per API to see that all is well. Of two versions of an object, the
one with the higher ``resourceVersion`` wins (a list may answer after a newer watch event).

What the watches never say: when kopf lists again (its watch expired, 410), it tells of the
objects listed but not of those deleted meanwhile. A listing therefore also drops what it does
not show (:meth:`Cache.replace`, :meth:`Cache.drop_apis`), unless a watch event newer than the
list told of it; and a list made before a deletion a watch event told of does not bring the
object back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cortex.k8s import CHILD_KINDS, LABEL_API_NAME, REPLICAS_FIELD, child_name
from cortex.operator.status import ApiFacts, PodFacts

__all__ = ["Cache", "Key", "Resource"]

Key = tuple[str, str]  # (namespace, name) of a RealtimeAPI
Body = Mapping[str, Any]


@dataclass(frozen=True)
class Resource:
    """What a pass needs of a RealtimeAPI: identity, spec, the /scale replicas, last status,
    when it was created (the older of two APIs claiming one route keeps it)."""

    uid: str
    generation: int
    spec: Mapping[str, Any]
    replicas: int | None
    status: Mapping[str, Any] | None
    facts: ApiFacts
    created: str = ""
    version: int = 0  # resourceVersion

    @classmethod
    def of(cls, body: Body) -> Resource:
        spec = dict(body.get("spec") or {})
        replicas = spec.pop(REPLICAS_FIELD, None)
        meta = body["metadata"]
        current = dict(body.get("status") or {}) or None
        facts = ApiFacts.of({**body, "spec": spec})
        generation = int(meta.get("generation") or 1)
        created = str(meta.get("creationTimestamp") or "")
        version = _version(body)
        return cls(meta["uid"], generation, spec, replicas, current, facts, created, version)

    @property
    def signature(self) -> tuple[str, int, int | None]:
        return (self.uid, self.generation, self.replicas)


def _version(body: Body) -> int:
    text = str(body.get("metadata", {}).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


def owner_key(body: Body) -> Key:
    """The RealtimeAPI a child belongs to, from its ``cortex.dev/api-name`` label."""
    return (body["metadata"]["namespace"], body["metadata"]["labels"][LABEL_API_NAME])


@dataclass
class Cache:
    apis: dict[Key, Resource] = field(default_factory=dict)
    children: dict[str, dict[Key, dict[str, Any]]] = field(
        default_factory=lambda: {child.kind: {} for child in CHILD_KINDS}
    )
    pods: dict[Key, dict[str, tuple[int, PodFacts]]] = field(default_factory=dict)
    primed: set[str | None] = field(default_factory=set)  # namespaces listed (None: all)
    # (kind, namespace, name) -> the resourceVersion of its deletion, until a newer list
    deleted: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def observe_api(self, event: str | None, body: Body) -> Key:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if event == "DELETED":
            self.apis.pop(key, None)
            return key
        found, known = Resource.of(body), self.apis.get(key)
        if known is None or known.uid != found.uid or known.version <= found.version:
            self.apis[key] = found  # not an event older than what the operator wrote itself
        return key

    def wrote_replicas(self, key: Key, replicas: int, answer: Body) -> None:
        """The operator itself set the API's replicas (``answer``: what its /scale said): the
        passes until the watch says so too must not render the replicas it had before."""
        known, version = self.apis.get(key), _version(answer)
        if known is not None and version > known.version:
            self.apis[key] = dataclasses.replace(known, replicas=replicas, version=version)

    def observe_child(self, kind: str, event: str | None, body: Body) -> Key:
        """A Deployment, Service, route, HPA or Pod of an API, as a watch or a list says
        (list items carry no ``kind``: the caller says it; ``event`` is None for a list's)."""
        key = owner_key(body)
        meta = body["metadata"]
        ident, version = (kind, meta["namespace"], meta["name"]), _version(body)
        if event == "DELETED":
            self.deleted[ident] = version
        elif event is None and self.deleted.get(ident, -1) >= version:
            return key  # a list made before the deletion a watch event told of
        else:
            self.deleted.pop(ident, None)
        if kind == "Pod":
            pods = self.pods.setdefault(key, {})
            name = body["metadata"]["name"]
            known = pods.get(name)
            if event == "DELETED":
                pods.pop(name, None)
            elif known is None or known[0] <= _version(body):
                pods[name] = (_version(body), PodFacts.of(body))
            if not pods:
                del self.pods[key]
            return key
        if body["metadata"]["name"] != child_name(key[1]):
            # Not one we render: e.g. the HPA KEDA makes for a ScaledObject, which copies its
            # labels (keda-hpa-api-<name>), and would pass for ours in the cache.
            return key
        objects = self.children[kind]
        known_body = objects.get(key)
        if event == "DELETED":
            if known_body is not None and _same(known_body, body):
                del objects[key]
        elif known_body is None or _version(known_body) <= _version(body):
            objects[key] = dict(body)
        return key

    def replace(
        self, kind: str, scope: str | None, items: Sequence[Body], version: int
    ) -> set[Key]:
        """What a list of ``kind`` (``Pod`` or a child kind) in ``scope`` (a namespace; None:
        all) at ``version`` says: its items are observed, the objects it lacks are dropped
        unless newer. Returns the APIs whose objects were dropped."""
        for item in items:
            self.observe_child(kind, None, item)
        listed = {(item["metadata"]["namespace"], item["metadata"]["name"]) for item in items}
        self.deleted = {
            ident: seen
            for ident, seen in self.deleted.items()
            if not (ident[0] == kind and scope in (None, ident[1]) and seen <= version)
        }

        def gone(key: Key, name: str, seen: int) -> bool:
            return scope in (None, key[0]) and (key[0], name) not in listed and seen <= version

        dropped = set()
        if kind == "Pod":
            for key, pods in list(self.pods.items()):
                for name in [n for n, (seen, _) in pods.items() if gone(key, n, seen)]:
                    del pods[name]
                    dropped.add(key)
                if not pods:
                    del self.pods[key]
            return dropped
        objects = self.children[kind]
        for key, body in list(objects.items()):
            if gone(key, body["metadata"]["name"], _version(body)):
                del objects[key]
                dropped.add(key)
        return dropped

    def drop_apis(self, scope: str | None, items: Sequence[Body], version: int) -> set[Key]:
        """Drop the RealtimeAPIs of ``scope`` that a list at ``version`` lacks (or shows with
        another uid), unless newer; returns their keys."""
        listed = {
            (item["metadata"]["namespace"], item["metadata"]["name"]): item["metadata"]["uid"]
            for item in items
        }
        dropped = {
            key
            for key, api in self.apis.items()
            if scope in (None, key[0]) and listed.get(key) != api.uid and api.version <= version
        }
        for key in dropped:
            del self.apis[key]
        return dropped

    def child(self, kind: str, key: Key) -> dict[str, Any] | None:
        return self.children[kind].get(key)

    def pod_facts(self, key: Key) -> list[PodFacts]:
        return [facts for _, facts in self.pods.get(key, {}).values()]

    def keys(self) -> set[Key]:
        """Every API something is cached for."""
        keys = set(self.apis) | set(self.pods)
        for objects in self.children.values():
            keys |= set(objects)
        return keys


def _same(a: Body, b: Body) -> bool:
    return bool(a.get("metadata", {}).get("uid") == b.get("metadata", {}).get("uid"))
