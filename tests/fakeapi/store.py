"""The fake API server's state: kinds, objects (with kmock's history) and the watch event log.

Every operation is synchronous, so it is atomic on the server's event loop; watchers are woken
through an ``asyncio.Event`` that is swapped on each change. The semantics follow a real
kube-apiserver where operators and kubectl notice: uid/resourceVersion/creationTimestamp/generation
stamping, ``generateName``, resourceVersion preconditions (409), the status subresource (main
writes ignore ``status``, status writes ignore the rest but a built-in object's annotations),
finalizers and ``deletionTimestamp``, dry runs, CRD schemas (prune/default/validate), built-in
defaulting and validation (``validation``), injected admission rejections (``admission``),
the users' admission checks (``admission_hooks``: OwnerReferencesPermissionEnforcement),
server-side apply and managedFields (the field manager's part is in ``apply``), and hooks for
controllers (GC, workloads), which share the store's clock. The event log is a window (the
last ``WINDOW`` events; ``compact`` expires all until now), so a watch from an older
resourceVersion expires as on a real server.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import copy
import datetime
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kmock

from tests.fakeapi import admission, apply, clock, errors, schemas, validation
from tests.fakeapi.selectors import Predicate

Obj = dict[str, Any]
Key = tuple[kmock.resource, str | None, str]


@dataclass
class Kind:
    """A served resource: what discovery says about it and what its writes must respect."""

    resource: kmock.resource
    kind: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    schema: Obj | None = None  # a CRD's openAPIV3Schema
    columns: list[Obj] = field(default_factory=list)  # a CRD's additionalPrinterColumns
    custom: bool = False  # served from a CRD: no strategic merge

    @property
    def api_version(self) -> str:
        group, version = self.resource.group, self.resource.version
        return f"{group}/{version}" if group else str(version)

    @property
    def what(self) -> str:
        """How messages name it: ``deployments.apps``, ``pods``."""
        group = self.resource.group
        return f"{self.resource.plural}.{group}" if group else str(self.resource.plural)


@dataclass
class Event:
    rv: int
    resource: kmock.resource
    type: str  # ADDED | MODIFIED | DELETED
    object: Obj


Hook = Callable[["Store", Event], None]
# Validating admission of a write: (store, kind, old object or None, new object, subresource);
# raises an ``ApiError`` to refuse it.
Admission = Callable[["Store", Kind, Obj | None, Obj, str | None], None]
WINDOW = 5000  # events a watch can resume from, like the watch cache's window


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_UNSENT = object()


def _essence(obj: Obj) -> Obj:
    """What bumps ``metadata.generation``: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class Store:
    def __init__(self) -> None:
        self.objects = kmock.ObjectsArray()  # every version, for assertions
        self._live: dict[kmock.resource, dict[tuple[str | None, str], Obj]] = {}
        self.kinds: dict[kmock.resource, Kind] = {}
        self.log: list[Event] = []  # the watch window: the last ``window`` events
        self.window = WINDOW
        self.compacted = 0  # new watches from an older resourceVersion expire (410)
        self.hooks: list[Hook] = []
        self.admission_hooks: list[Admission] = []
        self.rv = 0
        self._wakeup = asyncio.Event()
        self.clock = clock.Clock()  # the controllers' time, which tests move
        self.admission = admission.Admission()  # the rejections tests inject

    # --- reading -------------------------------------------------------------------------

    def kind(self, resource: kmock.resource | str) -> Kind:
        res = kmock.resource(resource) if isinstance(resource, str) else resource
        try:
            return self.kinds[res]
        except KeyError:
            raise errors.not_found("resource") from None

    def find(self, kind: Kind, namespace: str | None, name: str) -> Obj | None:
        """The stored object itself (do not modify it), or None."""
        live = self._live.get(kind.resource, {})
        return live.get((namespace if kind.namespaced else None, name))

    def items(self, kind: Kind, namespace: str | None = None) -> list[Obj]:
        """The stored objects of a kind (do not modify them), of one namespace or all."""
        return [
            obj
            for (ns, _), obj in self._live.get(kind.resource, {}).items()
            if not namespace or ns == namespace
        ]

    def get(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        obj = self.find(kind, namespace, name)
        if obj is None:
            raise errors.not_found(kind.what, name)
        return copy.deepcopy(obj)

    def select(
        self, kind: Kind, namespace: str | None, *predicates: Predicate
    ) -> tuple[list[Obj], str]:
        items = [
            copy.deepcopy(obj)
            for obj in self.items(kind, namespace)
            if all(predicate(obj) for predicate in predicates)
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return items, str(self.rv)

    def events_after(self, rv: int) -> list[Event]:
        """The events since ``rv``; all of them unless :meth:`lost` says otherwise."""
        return self.log[bisect.bisect_right(self.log, rv, key=lambda e: e.rv) :]

    def lost(self, rv: int) -> bool:
        """Whether events after ``rv`` have left the window (a running watch there expires)."""
        return bool(self.log) and self.log[0].rv > rv + 1

    def compact(self) -> None:
        """Expire every resourceVersion so far for new watches, as etcd's compaction does;
        running watches still get the events they have not read yet."""
        self.compacted = self.rv

    def wake(self) -> None:
        """Wake every watcher (to notice a change, or that the server is closing)."""
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Until the next change (or ``timeout``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    # --- writing -------------------------------------------------------------------------

    def create(
        self,
        kind: Kind,
        namespace: str | None,
        body: Obj,
        *,
        dry_run: bool = False,
        strict: bool = False,
        manager: str | None = None,
        applied: bool = False,
    ) -> Obj:
        """``manager``: who writes (for managedFields); ``applied``: the body is an apply's
        result and its managedFields stand."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        self._check_type(kind, obj)
        if kind.namespaced:
            namespace = namespace or meta.get("namespace")
            if meta.get("namespace", namespace) != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            self._check_namespace(namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = meta["generateName"] + suffix
        if not meta.get("name"):
            raise errors.invalid(
                kind.kind, "", [("metadata.name", "Required value: name is required")]
            )
        if self.find(kind, namespace, meta["name"]) is not None:
            raise errors.already_exists(kind.what, meta["name"])
        sent = meta.get("managedFields") if applied else None
        for key in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        if "status" in kind.subresources and kind.custom:
            obj.pop("status", None)
        obj = self._admit(kind, obj, strict=strict)
        for admit in self.admission_hooks:
            admit(self, kind, None, obj, None)
        self._manage(kind, None, obj, sent, manager=manager, subresource=None, applied=applied)
        if dry_run:
            return obj
        return self._commit(kind, obj, "ADDED")

    def update(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        change: Callable[[Obj], Obj],
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
        manager: str | None = None,
        applied: bool = False,
    ) -> Obj:
        """Replace the object with ``change(copy of it)``, keeping what the server owns."""
        old = self.get(kind, namespace, name)
        new = change(copy.deepcopy(old))
        if not isinstance(new, dict):
            raise errors.bad_request("the result must be a JSON object")
        sent = (new.get("metadata") or {}).get("managedFields", _UNSENT)
        asked_rv = (new.get("metadata") or {}).get("resourceVersion")
        if asked_rv and asked_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(
                kind.what,
                name,
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
            )
        if subresource == "status":
            sent_meta = new.get("metadata") or {}
            new = {**old, "status": new.get("status")}
            if new["status"] is None:
                new.pop("status")
            if (
                not kind.custom
            ):  # built-in status strategies keep annotations (a Deployment's revision)
                new["metadata"] = {**old["metadata"], "annotations": sent_meta.get("annotations")}
                if new["metadata"]["annotations"] is None:
                    del new["metadata"]["annotations"]
        else:
            self._check_type(kind, new)
            if "status" in kind.subresources:
                new["status"] = old.get("status")
                if new["status"] is None:
                    new.pop("status")
            meta = new.setdefault("metadata", {})
            for key in (
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
            ):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
                else:
                    meta.pop(key, None)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        new = self._admit(kind, new, strict=strict, old=old, subresource=subresource)
        for admit in self.admission_hooks:
            admit(self, kind, old, new, subresource)
        self._manage(
            kind, old, new, sent, manager=manager, subresource=subresource, applied=applied
        )
        if _essence(new) != _essence(old):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if new == old or dry_run:
            return new
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(kind, new)
        return self._commit(kind, new, "MODIFIED")

    def apply(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        config: Any,
        *,
        manager: str,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
    ) -> Obj:
        """Server-side apply: create the object from ``config`` or merge it in (see ``apply``)."""
        config = apply.check_config(config, name, namespace if kind.namespaced else None)
        self._check_type(kind, config)
        if kind.schema is not None:
            config = schemas.prune_object(config, kind.schema, strict=strict)
        options = {
            "manager": manager,
            "force": force,
            "subresource": subresource,
            "api_version": kind.api_version,
            "schema": kind.schema,
            "has_status": "status" in kind.subresources,
            "now": now(),
        }
        if self.find(kind, namespace, name) is None:
            if subresource:
                raise errors.not_found(kind.what, name)
            merged = apply.apply(None, config, **options)
            return self.create(kind, namespace, merged, dry_run=dry_run, applied=True)
        return self.update(
            kind,
            namespace,
            name,
            lambda live: apply.apply(live, config, **options),
            subresource=subresource,
            dry_run=dry_run,
            applied=True,
        )

    def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        dry_run: bool = False,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> Obj:
        obj = self.get(kind, namespace, name)
        if uid and obj["metadata"]["uid"] != uid:
            raise errors.conflict(kind.what, name, "the UID in the precondition does not match")
        self.admission.check(kind.what, "delete", obj, None)
        if dry_run:
            return obj
        if propagation == "Orphan":
            self._orphan(obj["metadata"]["uid"])
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return obj
            meta["deletionTimestamp"] = now()
            meta["deletionGracePeriodSeconds"] = 0
            return self._commit(kind, obj, "MODIFIED")
        return self._remove(kind, obj)

    # --- internals -----------------------------------------------------------------------

    def _check_type(self, kind: Kind, obj: Obj) -> None:
        if obj.get("kind", kind.kind) != kind.kind:
            raise errors.bad_request(f"the kind {obj['kind']!r} does not match {kind.kind!r}")
        if obj.get("apiVersion", kind.api_version) != kind.api_version:
            raise errors.bad_request(
                f"the apiVersion {obj['apiVersion']!r} does not match {kind.api_version!r}"
            )
        obj["kind"], obj["apiVersion"] = kind.kind, kind.api_version

    def _manage(self, kind: Kind, old: Obj | None, new: Obj, sent: Any, **write: Any) -> None:
        """An apply's own managedFields stand, a client's write records its Update, and the
        cluster's own writes keep the old ones (its controllers are nobody's managers here)."""
        if write["applied"]:
            fields = sent
        elif write["manager"]:
            fields = apply.record_update(old, new, sent, kind=kind, now=now(), **write)
        else:
            fields = (old or {}).get("metadata", {}).get("managedFields")
        new["metadata"]["managedFields"] = fields
        if not fields:
            del new["metadata"]["managedFields"]

    def _check_namespace(self, namespace: str | None) -> None:
        if not namespace:
            raise errors.bad_request("a namespace is required for a namespaced resource")
        namespaces = self.kinds[kmock.resource("v1/namespaces")]
        if self.find(namespaces, None, namespace) is None:
            raise errors.not_found("namespaces", namespace)

    def _admit(
        self,
        kind: Kind,
        obj: Obj,
        *,
        strict: bool,
        old: Obj | None = None,
        subresource: str | None = None,
    ) -> Obj:
        """Built-in workloads are defaulted and validated on every write (``validation``: an
        apply that stops owning ``replicas`` gets 1 back); a CRD's structural schema prunes
        unknown fields (or rejects them), defaults and validates. Then the injected rejections."""
        _check_annotations(kind, obj)
        if kind.schema is None:
            obj = validation.admit(kind.kind, obj, old, subresource)
        else:
            obj = schemas.prune_object(obj, kind.schema, strict=strict)
            root = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
            root = schemas.default(root, kind.schema)
            causes = schemas.validate(root, kind.schema)
            if causes:
                raise errors.invalid(kind.kind, obj["metadata"].get("name", ""), causes)
            obj = {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "metadata": obj["metadata"],
                **root,
            }
        self.admission.check(kind.what, "update" if old else "create", obj, subresource)
        return obj

    def _commit(self, kind: Kind, obj: Obj, type_: str) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (kind.resource, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self._live.setdefault(kind.resource, {})[key[1:]] = obj
        if key not in self.objects:
            self.objects[key] = copy.deepcopy(obj)
        else:
            self.objects[key].history.append(copy.deepcopy(obj))
        self._emit(Event(self.rv, kind.resource, type_, copy.deepcopy(obj)))
        return obj

    def _remove(self, kind: Kind, obj: Obj) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (kind.resource, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self._live.get(kind.resource, {}).pop(key[1:], None)
        self.objects[key].delete()
        self._emit(Event(self.rv, kind.resource, "DELETED", copy.deepcopy(obj)))
        return obj

    def all_items(self) -> list[tuple[Kind, Obj]]:
        """Every stored object with its kind (do not modify them)."""
        return [
            (self.kinds[res], obj)
            for res, objs in self._live.items()
            if res in self.kinds
            for obj in objs.values()
        ]

    def _orphan(self, uid: str) -> None:
        for kind, obj in self.all_items():
            refs = obj["metadata"].get("ownerReferences", [])
            if any(ref.get("uid") == uid for ref in refs):
                kept = [ref for ref in refs if ref.get("uid") != uid]

                def drop(o: Obj, kept: list[Obj] = kept) -> Obj:
                    o["metadata"]["ownerReferences"] = kept
                    return o

                meta = obj["metadata"]
                self.update(kind, meta.get("namespace"), meta["name"], drop)

    def _emit(self, event: Event) -> None:
        self.log.append(event)
        if len(self.log) > self.window:
            self.compacted = max(self.compacted, self.log[-self.window - 1].rv)
            del self.log[: -self.window]
        self.wake()
        for hook in list(self.hooks):
            hook(self, event)


ANNOTATIONS_LIMIT = 256 * 1024  # apimachinery's TotalAnnotationSizeLimitB


def _check_annotations(kind: Kind, obj: Obj) -> None:
    """Every object's annotations, keys and values together, fit in 256 KiB."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    size = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if size > ANNOTATIONS_LIMIT:
        problem = f"Too long: may not be more than {ANNOTATIONS_LIMIT} bytes"
        name = (obj.get("metadata") or {}).get("name", "")
        raise errors.invalid(kind.kind, name, [("metadata.annotations", problem)])
