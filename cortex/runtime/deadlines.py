"""A request's deadlines: its body must arrive within the body timeout, its prediction must
answer within ``networking.timeout`` (both from the request's arrival), and a prediction whose
client has gone is given up at once.

Giving up cancels the request's task where it waits: an ``async def`` predict gets
``CancelledError`` where it awaits, a sync one keeps its thread until it returns (see
:mod:`cortex.runtime.threads`), and either way the request's admission slot is free at once.

No timer or task per request (a trivial prediction costs about 10 µs here, and a timer handle
alone a tenth of that): one :class:`Clock` per worker looks at the requests in progress every
``TICK`` seconds while there are any. A deadline is therefore kept to within a tick, and only a
request still waiting after a tick gets a task watching its connection for a disconnect.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Coroutine
from typing import TypeVar

from starlette.types import Receive

T = TypeVar("T")
TICK = 0.05  # seconds between two looks at the requests in progress


class BodyTimeout(Exception):
    """The request body did not finish arriving within the body timeout."""


class TimedOut(Exception):
    """The prediction did not answer within the request's timeout."""


class Disconnected(Exception):
    """The client closed its connection before the answer."""


class _Phase(enum.Enum):
    READING = enum.auto()  # the body
    PREDICTING = enum.auto()  # until the result (or a stream's first chunk)
    ANSWERING = enum.auto()  # the response has begun: nothing may cut it


class Clock:
    """One worker's requests in progress, looked at every tick while there are any."""

    def __init__(self) -> None:
        self._guards: set[Guard] = set()
        self._ticking = False

    def guard(self, receive: Receive, body_timeout: float, timeout: float) -> Guard:
        """The deadlines of the request being served by the current task."""
        guard = Guard(self, receive, body_timeout, timeout)
        self._guards.add(guard)
        if not self._ticking:
            self._ticking = True
            guard.loop.call_later(TICK, self._tick, guard.loop)
        return guard

    def forget(self, guard: Guard) -> None:
        self._guards.discard(guard)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for guard in list(self._guards):
            guard.check(now)
        if self._guards:
            loop.call_later(TICK, self._tick, loop)
        else:
            self._ticking = False


class Guard:
    """The deadlines of one request, for the task that serves it; :meth:`close` it at the end."""

    def __init__(self, clock: Clock, receive: Receive, body_timeout: float, timeout: float) -> None:
        task = asyncio.current_task()
        assert task is not None  # made inside the request's handler
        self.loop, self.receive = asyncio.get_running_loop(), receive
        self._clock, self._task = clock, task
        self._started = self.loop.time()
        self._body_deadline, self._deadline = self._started + body_timeout, self._started + timeout
        self._phase = _Phase.READING
        self._cause: Exception | None = None  # why we gave up on the request
        self._waiting = False  # inside a guarded wait: a cancel lands there
        self._watcher: asyncio.Task[None] | None = None

    async def body(self, limit: int) -> bytes | None:
        """The whole request body, or None when it grows past ``limit`` bytes; raises
        :class:`BodyTimeout` or :class:`Disconnected`."""
        body = await self._guarded(_read(self.receive, limit))
        self._phase = _Phase.PREDICTING
        return body

    async def answer(self, work: Awaitable[T]) -> T:
        """``work``'s result; raises :class:`TimedOut` or :class:`Disconnected` (cancelling
        ``work``). Call it again for a stream's first chunk, then :meth:`answering`."""
        return await self._guarded(work)

    def answering(self) -> None:
        """The response starts: from now on no deadline or disconnect cancels anything, and
        the connection is the response's to watch."""
        self._phase = _Phase.ANSWERING
        self._clock.forget(self)
        if self._watcher is not None:
            self._watcher.cancel()

    def close(self) -> None:
        """At the end of the request, whatever happened."""
        if self._phase is not _Phase.ANSWERING:
            self.answering()

    def check(self, now: float) -> None:
        """Give up on a deadline passed; watch the connection of a prediction that waits."""
        if self._phase is _Phase.READING:
            if now >= self._body_deadline:
                self._give_up(BodyTimeout())
        elif now >= self._deadline:
            self._give_up(TimedOut())
        elif self._watcher is None:
            self._watcher = self.loop.create_task(_disconnect(self.receive))
            self._watcher.add_done_callback(self._on_disconnect)

    async def _guarded(self, work: Awaitable[T]) -> T:
        if self._cause is not None:  # it passed between two guarded waits
            _discard(work)
            raise self._cause
        self._waiting = True
        try:
            return await work
        except asyncio.CancelledError:
            cause = self._cause
            if cause is None or self._task.uncancel() > 0:
                raise  # cancelled by someone else (the worker shutting down)
            raise cause from None
        finally:
            self._waiting = False

    def _on_disconnect(self, watcher: asyncio.Task[None]) -> None:
        gone = not watcher.cancelled() and watcher.exception() is None
        if gone and self._phase is _Phase.PREDICTING:
            self._give_up(Disconnected())

    def _give_up(self, cause: Exception) -> None:
        """Cancel the wait under way, or the next one: never the task elsewhere."""
        if self._cause is None:
            self._cause = cause
            self._clock.forget(self)
            if self._waiting:
                self._task.cancel()


def _discard(work: Awaitable[object]) -> None:
    """Drop work that will not be awaited: a coroutine never started, a future cancelled."""
    if isinstance(work, Coroutine):
        work.close()
    elif isinstance(work, asyncio.Future):
        work.cancel()


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


async def _disconnect(receive: Receive) -> None:
    """Return when the client disconnects: once the body is read, that is all an ASGI server
    sends. Anything else (a server outside the spec) never counts as one."""
    if (await receive())["type"] != "http.disconnect":
        await asyncio.Event().wait()
