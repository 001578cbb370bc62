"""The only module that talks to the Kubernetes API server: create-or-patch children, write status.

``apply(manifest)`` creates the object (POST) and, on 409, patches it: a JSON merge patch computed
three-way like ``kubectl apply`` from the manifest last applied (kept in the annotation
``cortex.dev/last-applied``), the new one and the live object. When the new manifest equals the
last applied one nothing is sent, so a restarted operator writes nothing. Fields the manifest
leaves out stay untouched: ``spec.replicas`` of a Deployment is sent only on creation (the HPA
owns it afterwards), ``spec.clusterIP`` and other server-filled fields are never contested.

Errors: connection failures, timeouts, 429 and 5xx are :class:`cortex.errors.TemporaryError`
(retry later); 400/422 (the server rejects what we rendered) are
:class:`cortex.errors.PermanentError`; a child's name taken by an object that is not ours is a
:class:`ForeignObjectError` (temporary: it heals once that object is gone). Credentials come
from kopf's login handlers (a :class:`kopf.ConnectionInfo`): the in-cluster service account or
a kubeconfig.
"""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import aiohttp
import kopf

from cortex import contracts, errors

__all__ = [
    "LAST_APPLIED",
    "ConflictError",
    "ForeignObjectError",
    "Kube",
    "NotFoundError",
    "object_path",
    "three_way_patch",
]

LAST_APPLIED = f"{contracts.GROUP}/last-applied"
_PLURALS = {
    "Deployment": "deployments",
    "Service": "services",
    "Ingress": "ingresses",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    contracts.KIND: contracts.PLURAL,
}
_MERGE_PATCH = "application/merge-patch+json"
Manifest = dict[str, Any]


class NotFoundError(errors.TemporaryError):
    """404: the object (or its kind) is not there (yet)."""


class ConflictError(errors.TemporaryError):
    """409: the object exists, or changed since we read it."""


class ForeignObjectError(errors.TemporaryError):
    """A child's name is taken by an object cortex does not manage (heals when it is removed)."""


def object_path(
    api_version: str, kind: str, namespace: str, name: str | None = None, subresource: str = ""
) -> str:
    """The REST path of a namespaced object (or of its collection when ``name`` is None)."""
    prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    plural = _PLURALS.get(kind, kind.lower() + "s")
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    if name is not None:
        path += f"/{name}"
    return f"{path}/{subresource}" if subresource else path


def three_way_patch(last: Any, desired: Any, live: Any) -> dict[str, Any]:
    """A JSON merge patch turning ``live`` into ``desired``, deleting what ``last`` had set.

    Maps merge key by key; lists and scalars are replaced whole when they differ from ``live``.
    """
    last = last if isinstance(last, dict) else {}
    live = live if isinstance(live, dict) else {}
    patch: dict[str, Any] = {key: None for key in last if key not in desired and key in live}
    for key, value in desired.items():
        current = live.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            sub = three_way_patch(last.get(key), value, current)
            if sub:
                patch[key] = sub
        elif value != current or key not in live:
            patch[key] = copy.deepcopy(value)
    return patch


def _applied(manifest: Manifest) -> Manifest:
    """What we own of a manifest: all of it but a Deployment's replicas and our annotation."""
    applied = copy.deepcopy(manifest)
    applied.get("metadata", {}).get("annotations", {}).pop(LAST_APPLIED, None)
    if applied.get("kind") == "Deployment":
        applied.get("spec", {}).pop("replicas", None)
    return applied


def _owner_uid(manifest: Manifest) -> str | None:
    refs = manifest.get("metadata", {}).get("ownerReferences") or []
    return next((ref.get("uid") for ref in refs if ref.get("controller")), None)


class Kube:
    """An API client bound to one server and its credentials (kopf's ``ConnectionInfo``)."""

    def __init__(self, info: kopf.ConnectionInfo, *, timeout: float = 30.0) -> None:
        self._info = info
        self._server = info.server.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            with warnings.catch_warnings():  # aiohttp >= 3.14 deprecates BasicAuth objects
                warnings.simplefilter("ignore", DeprecationWarning)
                auth = self._info.as_aiohttp_basic_auth()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32, ssl=self._info.as_ssl_context()),
                headers={**self._info.as_http_headers(), "User-Agent": "cortex-operator"},
                auth=auth,
                timeout=self._timeout,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Manifest:
        """One API call; returns the decoded JSON answer or raises a cortex error."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self._client().request(
                method, self._server + path, data=data, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            message = f"{method} {path}: cannot reach the API server ({exc!r})"
            raise errors.TemporaryError(message) from None
        answer = _decode(text)
        if status < 400:
            return answer
        message = f"{method} {path}: {status} {answer.get('message') or text[:200]}"
        if status == 404:
            raise NotFoundError(message)
        if status == 409:
            raise ConflictError(message)
        if status in (400, 422):
            raise errors.PermanentError(message)
        raise errors.TemporaryError(message)

    async def apply(self, manifest: Manifest) -> str:
        """Create or patch a namespaced child; returns ``created``, ``patched`` or ``unchanged``."""
        applied = _applied(manifest)
        record = json.dumps(applied, sort_keys=True, separators=(",", ":"))
        meta = manifest["metadata"]
        body = copy.deepcopy(manifest)
        body["metadata"].setdefault("annotations", {})[LAST_APPLIED] = record
        kind, version, ns, name = (
            manifest["kind"],
            manifest["apiVersion"],
            meta["namespace"],
            meta["name"],
        )
        try:
            await self.request("POST", object_path(version, kind, ns), body)
            return "created"
        except ConflictError:
            pass
        path = object_path(version, kind, ns, name)
        live = await self.request("GET", path)
        _check_owner(live, _owner_uid(manifest), f"{kind} {ns}/{name}")
        previous = live.get("metadata", {}).get("annotations", {}).get(LAST_APPLIED)
        if previous == record:
            return "unchanged"
        patch = three_way_patch(_decode(previous or "{}"), applied, live)
        patch.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = record
        patch["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        await self.request("PATCH", path, patch, _MERGE_PATCH)
        return "patched"

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> bool:
        """Merge ``status`` into the resource's status; False when the resource is gone."""
        path = object_path(api_version, kind, namespace, name, "status")
        try:
            await self.request("PATCH", path, {"status": status}, _MERGE_PATCH)
        except NotFoundError:
            return False
        return True


def _decode(text: str) -> Manifest:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _check_owner(live: Manifest, uid: str | None, what: str) -> None:
    """An existing child must be ours; an old owner's leftover waits for the GC."""
    refs = live.get("metadata", {}).get("ownerReferences") or []
    if uid is None or any(ref.get("uid") == uid for ref in refs):
        return
    if any(ref.get("kind") == contracts.KIND for ref in refs):
        raise errors.TemporaryError(
            f"{what} still belongs to a deleted RealtimeAPI of the same name; "
            "waiting for the garbage collector to remove it"
        )
    raise ForeignObjectError(
        f"{what} already exists and is not managed by cortex; delete it or rename the API"
    )
