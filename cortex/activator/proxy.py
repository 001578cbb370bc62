"""One request through the activator: hold it until a slot is free, then proxy it.

- No API at that host and path: 404. The request's body is read first (it is resent when a
  connection is refused).
- :meth:`Gate.acquire` gives a slot at once when a replica is ready and not full, else holds
  the request: a full queue is 503 + ``Retry-After``, and so is ``scale_from_zero_timeout``
  passing. A client that leaves while held is dropped (aiohttp cancels its handler).
- A client that accepts ``text/event-stream`` and is held longer than a heartbeat gets a 200
  stream at once and a comment line (``: waiting``) every heartbeat, so no proxy on the way
  times it out; the answer (or the error, as an ``event: error``) follows on that stream.
- A connection refused before any byte was sent (a replica that just died, or whose endpoint
  is not routed yet) is retried 3 times (100, 200, 400 ms), then 502. Nothing else is retried:
  a POST that reached a replica may have run.
- A response that was held while the API woke carries ``X-Cortex-Cold-Start: <seconds>``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from cortex import contracts
from cortex.activator.clock import Clock, wait_until
from cortex.activator.doors import Door
from cortex.activator.gate import Closed, QueueFull, Slot

__all__ = ["RETRY_AFTER_SECONDS", "Proxy"]

RETRY_AFTER_SECONDS = 5
CONNECT_RETRIES = (0.1, 0.2, 0.4)
WHOLE_BODY_BYTES = 64 * 1024  # a response up to this size is read whole, then sent at once
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    )
)  # fmt: skip


class Proxy:
    """The request handler, given the doors, a clock and the HTTP client to the replicas."""

    def __init__(self, clock: Clock, session: aiohttp.ClientSession, heartbeat: float) -> None:
        self.clock = clock
        self.session = session
        self.heartbeat = heartbeat

    async def serve(self, request: web.Request, door: Door) -> web.StreamResponse:
        body = await request.read()
        start = self.clock.now()
        deadline = start + door.target.api.autoscaling.scale_from_zero_timeout
        sse = "text/event-stream" in request.headers.get("Accept", "")
        stream: list[web.StreamResponse] = []  # the heartbeat stream, once started
        try:
            slot, upstream = await self._connect(request, door, body, deadline, stream, sse)
        except QueueFull:
            return await _unavailable(request, stream, "too many requests held")
        except Closed:
            return await _unavailable(request, stream, "the activator is stopping")
        except TimeoutError:
            return await _unavailable(request, stream, "no replica became ready in time")
        except aiohttp.ClientConnectorError:
            return await _error(request, stream, 502, "the replica refused the connection")
        try:
            cold = self.clock.now() - start if slot.cold else None
            return await _relay(request, upstream, cold, stream)
        finally:
            upstream.release()
            door.gate.release(slot.endpoint)

    async def _connect(
        self,
        request: web.Request,
        door: Door,
        body: bytes,
        deadline: float,
        stream: list[web.StreamResponse],
        sse: bool,
    ) -> tuple[Slot, aiohttp.ClientResponse]:
        """A slot and the replica's response; a refused connection is retried on a new slot."""
        retries, cold = iter(CONNECT_RETRIES), False
        while True:
            slot = await self._acquire(request, door, deadline, stream if sse else None)
            cold = cold or slot.cold  # held at zero on an earlier try: still a cold start
            try:
                upstream = await self.session.request(
                    request.method,
                    slot.endpoint.url + request.rel_url.raw_path_qs,
                    headers=_forwarded(request),
                    data=body,
                    allow_redirects=False,
                )
            except aiohttp.ClientConnectorError:
                door.gate.release(slot.endpoint)
                delay = next(retries, None)
                if delay is None:
                    raise
                await self.clock.sleep_until(self.clock.now() + delay)
                continue
            return dataclasses.replace(slot, cold=cold), upstream

    async def _acquire(
        self,
        request: web.Request,
        door: Door,
        deadline: float,
        stream: list[web.StreamResponse] | None,
    ) -> Slot:
        """A slot; with ``stream`` (an SSE client), heartbeats while held."""
        slot = door.gate.try_acquire()
        if slot is not None:
            return slot
        waiting = asyncio.ensure_future(door.gate.acquire(deadline, counted=True))
        try:
            while True:
                beat = min(deadline, self.clock.now() + self.heartbeat)
                try:
                    return await wait_until(self.clock, asyncio.shield(waiting), beat)
                except TimeoutError:
                    if waiting.done() or stream is None or self.clock.now() >= deadline:
                        return await waiting
                    if not stream:
                        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                        response.headers["Cache-Control"] = "no-cache"
                        await response.prepare(request)
                        stream.append(response)
                    await stream[0].write(b": waiting for a replica\n\n")
        finally:
            if not waiting.done():
                waiting.cancel()


def _forwarded(request: web.Request) -> CIMultiDict[str]:
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
    peer = request.remote or ""
    prior = headers.pop("X-Forwarded-For", "")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    return headers


async def _relay(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    cold: float | None,
    stream: list[web.StreamResponse],
) -> web.StreamResponse:
    if stream:  # headers went out with the heartbeats: the answer follows on the stream
        response = stream[0]
        if cold is not None:
            await response.write(f": {contracts.COLD_START_HEADER} {cold:.3f}\n\n".encode())
        if upstream.status >= 400:
            text = (await upstream.read()).decode(errors="replace")
            await response.write(_event(upstream.status, text))
        else:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        await response.write_eof()
        return response
    headers = CIMultiDict(
        (k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
    )
    if cold is not None:
        headers[contracts.COLD_START_HEADER] = f"{cold:.3f}"
    length = upstream.content_length
    if length is not None and length <= WHOLE_BODY_BYTES and request.method != "HEAD":
        # one write for the head and the body together
        body = await upstream.read()
        return web.Response(
            status=upstream.status, reason=upstream.reason, headers=headers, body=body
        )
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    await response.prepare(request)
    async for chunk in upstream.content.iter_any():
        await response.write(chunk)
    await response.write_eof()
    return response


def _event(status: int, message: str) -> bytes:
    data = json.dumps({"status": status, "error": message[:1000]})
    return f"event: error\ndata: {data}\n\n".encode()


async def _unavailable(
    request: web.Request, stream: list[web.StreamResponse], why: str
) -> web.StreamResponse:
    return await _error(request, stream, 503, why, {"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _error(
    request: web.Request,
    stream: list[web.StreamResponse],
    status: int,
    why: str,
    headers: dict[str, Any] | None = None,
) -> web.StreamResponse:
    if stream:
        await stream[0].write(_event(status, why))
        await stream[0].write_eof()
        return stream[0]
    return web.json_response({"error": why}, status=status, headers=headers)
