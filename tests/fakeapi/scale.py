"""The ``scale`` subresource: an ``autoscaling/v1`` Scale over an object's replica count.

Deployments and ReplicaSets map ``spec.replicas``, ``status.replicas`` and their selector;
a custom resource maps the paths its CRD declares in ``subresources.scale``
(``specReplicasPath``, ``statusReplicasPath``, ``labelSelectorPath``). GET reads the Scale;
PUT writes one, PATCH patches one (merge, JSON or strategic merge), each then written to the
object as an update of its spec (so a custom resource's generation goes up), with the Scale's
``resourceVersion`` as a precondition, and answers the new Scale. What ``kubectl scale``, the HPA
and KEDA use.
"""

from __future__ import annotations

import copy
from typing import Any

import kmock

from tests.fakeapi import errors, merging, validation
from tests.fakeapi.store import Kind, Obj, Store

CRDS = kmock.resource("apiextensions.k8s.io/v1/customresourcedefinitions")
_BUILTIN = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": "",
}


def read(store: Store, kind: Kind, namespace: str | None, name: str) -> Obj:
    obj = store.get(kind, namespace, name)
    return _scale_of(obj, paths(store, kind))


def write(
    store: Store,
    kind: Kind,
    namespace: str | None,
    name: str,
    scale: Any,
    **options: Any,
) -> Obj:
    """Write the Scale ``scale`` (a PUT's body, or the patched Scale) to the object."""
    if not isinstance(scale, dict):
        raise errors.bad_request("the body must be a Scale")
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise errors.bad_request(
            'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal '
            f"{type(replicas).__name__} into Go struct field ScaleSpec.spec.replicas of type int32"
        )
    if replicas < 0:
        cause = ("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
        raise errors.invalid("Scale", name, [cause], group="autoscaling")
    config = paths(store, kind)
    wanted = (scale.get("metadata") or {}).get("resourceVersion")

    def change(obj: Obj) -> Obj:
        if wanted and wanted != obj["metadata"]["resourceVersion"]:
            raise errors.conflict(
                kind.what,
                name,
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
            )
        _set(obj, config["specReplicasPath"], replicas)
        return obj

    obj = store.update(kind, namespace, name, change, subresource="scale", **options)
    return _scale_of(obj, config)


def patch(
    store: Store,
    kind: Kind,
    namespace: str | None,
    name: str,
    content_type: str,
    body: Any,
    **options: Any,
) -> Obj:
    current = read(store, kind, namespace, name)
    if content_type == "application/json-patch+json":
        patched = merging.json_patch(current, body)
    else:  # a Scale has no lists: strategic merge is a merge patch
        patched = merging.merge_patch(current, body)
    return write(store, kind, namespace, name, patched, **options)


def paths(store: Store, kind: Kind) -> dict[str, str]:
    """Where the replica counts and the selector are (404 if the kind has no scale)."""
    if not kind.custom:
        return _BUILTIN
    resource = kind.resource
    for crd in store.items(store.kinds[CRDS]):
        spec = crd.get("spec") or {}
        if (spec.get("group"), (spec.get("names") or {}).get("plural")) != (
            resource.group,
            resource.plural,
        ):
            continue
        for version in spec.get("versions") or []:
            if version.get("name") == resource.version:
                scale = (version.get("subresources") or {}).get("scale")
                if scale:
                    return {"labelSelectorPath": "", **scale}
    raise errors.not_found(kind.what)


def _scale_of(obj: Obj, config: dict[str, str]) -> Obj:
    meta = obj["metadata"]
    replicas = _get(obj, config["specReplicasPath"])
    if config is _BUILTIN:
        selector = validation.selector_string(obj["spec"].get("selector"))
    else:
        found = _get(obj, config["labelSelectorPath"]) if config["labelSelectorPath"] else None
        selector = found if isinstance(found, str) else ""
    status: Obj = {"replicas": _get(obj, config["statusReplicasPath"]) or 0}
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: copy.deepcopy(meta[k])
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": replicas} if replicas else {},  # omitempty, as in autoscaling/v1
        "status": status,
    }


def _get(obj: Any, path: str) -> Any:
    for part in path.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _set(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value
