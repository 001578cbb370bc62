"""The fake API server's streaming answers: watches and pod logs.

- ``?watch=true`` replays after ``resourceVersion`` (or the current state), then streams events
  until ``timeoutSeconds``, the client leaving or the server closing. A ``resourceVersion`` the
  store has compacted (``Store.compacted``), or a watch whose unread events left the window,
  gets what a real server sends: an ``ERROR`` event with a 410 ``Expired`` Status (``too old
  resource version: X (Y)``), and the stream ends; clients relist.
- :func:`cut` breaks the open watches (of one resource, or all): their connections drop with
  the stream unfinished, as when an API server restarts; clients watch again from the last
  resourceVersion they saw (after a ``compact``, that is a 410 and a new list).
- ``pods/{name}/log`` serves the lines tests append (``FakeCluster.append_log``), with
  ``container``, ``tailLines``, ``sinceSeconds``, ``timestamps`` and ``follow`` (which streams
  new lines and ends when the pod is deleted), and a real server's 400s for container names.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp.web
import kmock

from tests.fakeapi import schemas
from tests.fakeapi.errors import ApiError, bad_request, not_found
from tests.fakeapi.selectors import field_selector, label_selector
from tests.fakeapi.store import Obj, Store

PODS = kmock.resource("v1/pods")
Watches = dict[asyncio.BaseTransport, str]  # the open watches' connections: their resource


class Server(Protocol):
    store: Store
    closing: bool
    logs: PodLogs
    watches: Watches

    def answered(self, request: kmock.Request, code: int) -> None: ...


def _error(server: Server, request: kmock.Request, exc: ApiError) -> aiohttp.web.Response:
    server.answered(request, exc.code)
    return aiohttp.web.json_response(exc.status(), status=exc.code)


def _gone(raw: aiohttp.web.BaseRequest) -> bool:
    return raw.transport is None or raw.transport.is_closing()


async def watch(server: Server, request: kmock.Request) -> aiohttp.web.StreamResponse:
    raw = request._raw_request
    assert raw is not None and request.resource is not None
    params, store = request.params, server.store
    try:
        kind = store.kind(request.resource)
        selectors = [
            label_selector(params.get("labelSelector")),
            field_selector(params.get("fieldSelector")),
        ]
    except ApiError as exc:
        return _error(server, request, exc)
    if request.name:
        selectors.append(field_selector(f"metadata.name={request.name}"))
    table = "as=Table" in request.headers.get("Accept", "")
    server.answered(request, 200)
    response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(raw)
    transport = raw.transport
    if transport is not None:
        server.watches[transport] = kind.what
    loop = asyncio.get_running_loop()
    timeout = float(params.get("timeoutSeconds") or 0) or 3600.0
    deadline = loop.time() + timeout

    def matches(obj: Obj) -> bool:
        ns = request.namespace
        return (not ns or obj["metadata"].get("namespace") == ns) and all(s(obj) for s in selectors)

    def line(type_: str, obj: Obj) -> bytes:
        if table:
            rv = obj["metadata"]["resourceVersion"]
            obj = schemas.table([obj], kind.columns, resource_version=rv)
        return json.dumps({"type": type_, "object": obj}).encode() + b"\n"

    rv = params.get("resourceVersion")
    chunks: list[bytes] = []
    oldest = 0  # the newest resourceVersion whose successors are not all there any more
    if rv and rv != "0":
        position, oldest = int(rv), store.compacted
    else:
        items, current = store.select(kind, request.namespace, *selectors)
        position = int(current)
        chunks = [line("ADDED", item) for item in items]
    try:
        while not server.closing and loop.time() < deadline:
            if store.lost(position):  # more unread events than the window holds
                oldest = store.log[0].rv - 1
            if position < oldest:
                await response.write(_expired(position, oldest))
                break
            for event in store.events_after(position):
                position = event.rv
                if event.resource == kind.resource and matches(event.object):
                    chunks.append(line(event.type, event.object))
            if chunks:
                await response.write(b"".join(chunks))
                chunks = []
            if _gone(raw):
                break
            await store.wait(min(1.0, max(deadline - loop.time(), 0.0)))
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass
    finally:
        if transport is not None:
            server.watches.pop(transport, None)
    return response


def cut(server: Server, resource: str | None = None) -> int:
    """Drop the connections of the open watches of ``resource`` (as RBAC names it:
    ``deployments.apps``; None: every watch); how many were dropped."""
    dropped = [t for t, what in server.watches.items() if resource in (None, what)]
    for transport in dropped:
        transport.abort()
        del server.watches[transport]
    server.store.wake()  # their handlers notice and end
    return len(dropped)


def _expired(asked: int, oldest: int) -> bytes:
    """The watch cache's answer to a resourceVersion it no longer has."""
    message = f"too old resource version: {asked} ({oldest})"
    status = ApiError(410, "Expired", message).status()
    return json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"


# --- pod logs ------------------------------------------------------------------------------


@dataclass
class PodLogs:
    """Lines per (namespace, pod, container), each with the time it was appended."""

    lines: dict[tuple[str, str, str], list[tuple[float, str]]] = field(default_factory=dict)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def append(self, store: Store, namespace: str, pod: str, line: str, container: str | None):
        obj = store.find(store.kind(PODS), namespace, pod)
        if obj is None:  # a cluster has logs only for pods that exist: fail the test clearly
            raise LookupError(f"pod {namespace}/{pod} does not exist")
        if container is None:
            names = _containers(obj)
            container = names[0] if names else ""
        self.lines.setdefault((namespace, pod, container), []).append((time.time(), line))
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)


def _containers(pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("name", "") for c in spec.get("containers", []) + spec.get("initContainers", [])]


def _container(pod: Obj, asked: str | None) -> str:
    name = pod["metadata"]["name"]
    names = _containers(pod)
    if asked:
        if asked not in names:
            raise bad_request(f"container {asked} is not valid for pod {name}")
        return asked
    main = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers", [])]
    if len(main) > 1:
        raise bad_request(
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(main)}]"
        )
    return main[0] if main else ""


def _render(entries: list[tuple[float, str]], timestamps: bool) -> bytes:
    out = []
    for when, text in entries:
        if timestamps:
            stamp = datetime.datetime.fromtimestamp(when, datetime.UTC)
            text = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + " " + text
        out.append(text.rstrip("\n") + "\n")
    return "".join(out).encode()


async def logs(server: Server, request: kmock.Request) -> aiohttp.web.StreamResponse:
    raw = request._raw_request
    assert raw is not None and request.name is not None
    params, store = request.params, server.store
    namespace, name = request.namespace or "", request.name
    try:
        pod = store.find(store.kind(PODS), namespace, name)
        if pod is None:
            raise not_found("pods", name)
        container = _container(pod, params.get("container"))
        tail = int(params["tailLines"]) if params.get("tailLines") else None
        since = float(params["sinceSeconds"]) if params.get("sinceSeconds") else None
    except ValueError:
        return _error(server, request, bad_request("tailLines and sinceSeconds must be integers"))
    except ApiError as exc:
        return _error(server, request, exc)
    server.answered(request, 200)
    key, uid = (namespace, name, container), pod["metadata"]["uid"]
    stamps = params.get("timestamps") in ("true", "1")
    entries = server.logs.lines.get(key, [])
    if since is not None:
        entries = [e for e in entries if e[0] >= time.time() - since]
    if tail is not None:
        entries = entries[-tail:] if tail > 0 else []
    if params.get("follow") not in ("true", "1"):
        return aiohttp.web.Response(body=_render(entries, stamps), content_type="text/plain")
    response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(raw)
    position = len(server.logs.lines.get(key, []))
    try:
        await response.write(_render(entries, stamps))
        while not server.closing and not _gone(raw):
            current = server.logs.lines.get(key, [])
            if len(current) > position:
                await response.write(_render(current[position:], stamps))
                position = len(current)
            live: Any = store.find(store.kind(PODS), namespace, name)
            if live is None or live["metadata"]["uid"] != uid:
                break
            # a new line or any store change (the pod's deletion among them)
            waits = [
                asyncio.ensure_future(server.logs.wait(1.0)),
                asyncio.ensure_future(store.wait(1.0)),
            ]
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass
    return response
