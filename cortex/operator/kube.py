"""The only module that talks to the Kubernetes API server: apply children, read one, write status.

``apply(manifest)`` is a server-side apply (``PATCH`` with ``application/apply-patch+yaml``) as
the field manager ``cortex-operator`` with ``force``: the API server merges our configuration
field by field, takes back the fields someone else changed (drift), and drops the ones we stop
sending. There is no last-applied annotation: the server's managedFields remember what we own.

Errors, by what retrying can do about them:

- :class:`RejectedError` (400, 403, 422): the server refuses what we send (admission, quota, a
  webhook, RBAC). Retrying the same request later may work once the cluster is fixed, so the
  caller shows it in the status and retries slowly.
- :class:`NotFoundError` (404), :class:`ConflictError` (409) and any other
  :class:`cortex.errors.TemporaryError` (connection failures, timeouts, 429, 5xx): retried with
  backoff.
- :class:`RetryAfterError`: a 429 (or a 5xx) with ``Retry-After``, what API Priority and
  Fairness answers when the server is overloaded. The retry waits at least that long, and so
  does every other request of the client meanwhile: the server throttles the operator's
  identity, not one request, and hammering it only prolongs the overload.

Credentials come from kopf's login handlers (a :class:`kopf.ConnectionInfo`): the in-cluster
service account or a kubeconfig.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import urllib.parse
import warnings
from typing import Any, NamedTuple

import aiohttp
import kopf

from cortex import contracts, errors
from cortex.k8s import child_kind

__all__ = [
    "FIELD_MANAGER",
    "ConflictError",
    "Kube",
    "Listing",
    "NotFoundError",
    "RejectedError",
    "RetryAfterError",
    "manifest_path",
    "object_path",
    "retry_after",
]

FIELD_MANAGER = "cortex-operator"
_PLURALS = {contracts.KIND: contracts.PLURAL}
_APPLY = "application/apply-patch+yaml"  # JSON is YAML
_MERGE_PATCH = "application/merge-patch+json"
Manifest = dict[str, Any]


class Listing(NamedTuple):
    """A list's items, and the resourceVersion it is a snapshot of."""

    items: list[Manifest]
    version: int


class NotFoundError(errors.TemporaryError):
    """404: the object (or its kind, or its namespace) is not there (yet)."""


class ConflictError(errors.TemporaryError):
    """409: the object changed since we read it, or exists already."""


class RetryAfterError(errors.TemporaryError):
    """429 or 5xx with ``Retry-After``: retry after ``retry_after`` seconds, not sooner."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after(exc: BaseException) -> float:
    """The seconds the API server asked to wait before a retry (0: it did not say)."""
    return exc.retry_after if isinstance(exc, RetryAfterError) else 0.0


class RejectedError(errors.PermanentError):
    """400, 403 or 422: the server refuses the request; ``reason`` is its Status reason."""

    def __init__(self, message: str, code: int, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


def object_path(
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str | None = None,
    subresource: str = "",
) -> str:
    """The REST path of a namespaced object (or of its collection when ``name`` is None, in
    every namespace when ``namespace`` is None too)."""
    prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    plural = _PLURALS.get(kind) or child_kind(kind).plural
    path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
    if name is not None:
        path += f"/{name}"
    return f"{path}/{subresource}" if subresource else path


def manifest_path(manifest: Manifest) -> str:
    meta = manifest["metadata"]
    return object_path(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])


class Kube:
    """An API client bound to one server and its credentials (kopf's ``ConnectionInfo``)."""

    def __init__(self, info: kopf.ConnectionInfo, *, timeout: float = 30.0) -> None:
        self._info = info
        self._server = info.server.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._quiet_until = 0.0  # time.monotonic() until which the server asked us to wait

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            with warnings.catch_warnings():  # aiohttp >= 3.14 deprecates BasicAuth objects
                warnings.simplefilter("ignore", DeprecationWarning)
                auth = self._info.as_aiohttp_basic_auth()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32, ssl=self._info.as_ssl_context()),
                headers={**self._info.as_http_headers(), "User-Agent": FIELD_MANAGER},
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
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": content_type} if data is not None else {}
        quiet = self._quiet_until - time.monotonic()
        if quiet > 0:
            await asyncio.sleep(quiet)
        try:
            async with self._client().request(
                method, self._server + path, data=data, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
                wait = _seconds(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            message = f"{method} {path}: cannot reach the API server ({exc!r})"
            raise errors.TemporaryError(message) from None
        answer = _decode(text)
        if status < 400:
            return answer
        said = answer.get("message") or text.strip()[:300]
        message = f"{method} {path}: {status} {said}"
        if wait and (status == 429 or status >= 500):
            self._quiet_until = max(self._quiet_until, time.monotonic() + wait)
            raise RetryAfterError(f"{message} (retry after {wait:g} s)", wait)
        if status == 404:
            raise NotFoundError(message)
        if status == 409:
            raise ConflictError(message)
        if status in (400, 403, 422):
            raise RejectedError(str(said), status, str(answer.get("reason") or status))
        raise errors.TemporaryError(message)

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        name: str | None = None,
    ) -> Listing:
        """The objects of a kind in a namespace (None: in all), with a label selector, or the
        one of that name; and the list's resourceVersion."""
        query = {"labelSelector": label_selector, "fieldSelector": name and f"metadata.name={name}"}
        params = urllib.parse.urlencode({k: v for k, v in query.items() if v})
        path = object_path(api_version, kind, namespace) + (f"?{params}" if params else "")
        answer = await self.request("GET", path)
        items = [item for item in answer.get("items") or [] if isinstance(item, dict)]
        version = str((answer.get("metadata") or {}).get("resourceVersion") or "0")
        return Listing(items, int(version) if version.isdigit() else 0)

    async def get(self, manifest: Manifest) -> Manifest | None:
        """The live object a manifest names, or None."""
        try:
            return await self.request("GET", manifest_path(manifest))
        except NotFoundError:
            return None

    async def delete(self, live: Manifest, api_version: str, kind: str) -> None:
        """Delete a live object, only that one (its uid as a precondition); gone is fine."""
        meta = live["metadata"]
        path = object_path(api_version, kind, meta["namespace"], meta["name"])
        body = {"preconditions": {"uid": meta["uid"]}, "propagationPolicy": "Background"}
        # gone already, or a new object of that name that is not ours to delete: fine
        with contextlib.suppress(NotFoundError, ConflictError):
            await self.request("DELETE", path, body)

    async def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply of a namespaced object as ``cortex-operator``, forcing conflicts."""
        path = f"{manifest_path(manifest)}?fieldManager={FIELD_MANAGER}&force=true"
        return await self.request("PATCH", path, manifest, _APPLY)

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


def _seconds(header: str | None) -> float:
    """A ``Retry-After`` in seconds (Kubernetes never sends the HTTP-date form); 0 if none,
    at most 5 minutes whatever a server says."""
    try:
        seconds = float(header or 0)
    except ValueError:
        return 0.0
    return 0.0 if math.isnan(seconds) else min(max(seconds, 0.0), 300.0)


def _decode(text: str) -> Manifest:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
