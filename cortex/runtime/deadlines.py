"""A request's deadlines: its body must arrive in time, and its prediction must answer before
``networking.timeout``, or give up as soon as the client has gone.

A prediction is awaited next to the connection: whichever comes first of its result, the
deadline or the client's disconnect decides. Giving up cancels the call: an ``async def``
predict gets ``CancelledError`` where it awaits, a sync one keeps its thread until it returns
(see :mod:`cortex.runtime.threads`), but either way the request's admission slot is free at
once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

T = TypeVar("T")


class BodyTimeout(Exception):
    """The request body did not finish arriving within the body timeout."""


class TimedOut(Exception):
    """The prediction did not answer before the request's deadline."""


class Disconnected(Exception):
    """The client closed its connection before the answer."""


async def read_body(receive: Receive, limit: int, timeout: float) -> bytes | None:
    """The whole request body, or None when it grows past ``limit`` bytes.

    Raises :class:`BodyTimeout` when it takes longer than ``timeout`` seconds (a client that
    sends a short ``Content-Length`` or never ends its chunks), :class:`Disconnected` when the
    client leaves while sending it.
    """
    try:
        async with asyncio.timeout(timeout):
            return await _read(receive, limit)
    except TimeoutError:
        raise BodyTimeout from None


async def _read(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def answer(work: Awaitable[T], deadline: float, receive: Receive) -> T:
    """``work``'s result; :class:`TimedOut` at ``deadline`` (the event loop's clock),
    :class:`Disconnected` when the client leaves first. ``work`` is cancelled in both cases."""
    call = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(receive))
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait(
            (call, gone), timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
        if not call.done():
            call.cancel()
    if call.done() and not call.cancelled():
        return call.result()
    raise Disconnected if gone.done() and not gone.cancelled() else TimedOut


async def _disconnect(receive: Receive) -> None:
    """Return when the client disconnects (the body has been read: nothing else comes)."""
    while (await receive())["type"] != "http.disconnect":
        pass
