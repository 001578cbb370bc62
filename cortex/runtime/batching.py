"""Server-side batching: gathers concurrent requests into one ``predict`` call.

A batch opens with its first request and closes when it holds ``max_batch_size`` requests or
``batch_interval`` seconds after it opened, whichever comes first (a timer on the event loop,
no polling). With ``concurrency`` (a sync ``predict``: its threads), a batch whose interval has
passed while every thread is busy keeps gathering until one is free: closing it then would
only queue a small batch behind the running one, and the model would pay per-call overhead
for requests that could have shared a call (MiniLM at 64 clients: a mean batch of ~15 instead
of 32). ``predict`` then gets lists of equal length for each argument it declares
(:func:`merge`), and must return a list of the same length; result ``i`` answers request ``i``
(:func:`split`). The clock and the timer are parameters, so the closing rule can be tested
without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

Call = Callable[[dict[str, list[Any]]], Awaitable[Any]]


class BatchSizeError(RuntimeError):
    """``predict`` returned something other than a list with one result per request."""


class Timer(Protocol):
    def cancel(self) -> None: ...


# ``schedule(delay, callback)``: run ``callback`` in ``delay`` seconds (``loop.call_later``).
Schedule = Callable[[float, Callable[[], None]], Timer]


def merge(requests: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """One request per item -> one list per argument, in request order."""
    if not requests:
        return {}
    return {name: [kwargs[name] for kwargs in requests] for name in requests[0]}


def split(results: Any, n: int) -> list[Any]:
    """A batched ``predict``'s return value -> one result per request (``n`` of them)."""
    if isinstance(results, list | tuple) and len(results) == n:
        return list(results)
    got = (
        f"a list of {len(results)}" if isinstance(results, list | tuple) else type(results).__name__
    )
    raise BatchSizeError(
        f"predict got a batch of {n} requests and returned {got}; "
        "with server_side_batching it must return a list with one result per request"
    )


def _call_later(delay: float, callback: Callable[[], None]) -> Timer:
    return asyncio.get_running_loop().call_later(delay, callback)


class Batcher:
    """Collects (kwargs, future) pairs and runs them as batches through ``call``."""

    def __init__(
        self,
        call: Call,
        max_batch_size: int,
        interval: float,
        on_batch: Callable[[int, list[float]], None] = lambda size, waits: None,
        *,
        concurrency: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
        schedule: Schedule = _call_later,
    ) -> None:
        self._call = call
        self._max = max_batch_size
        self._interval = interval
        self._on_batch = on_batch
        self._concurrency = concurrency  # batches that can run at once; None: no limit
        self._clock = clock
        self._schedule = schedule
        self._pending: list[tuple[dict[str, Any], asyncio.Future[Any], float]] = []
        self._timer: Timer | None = None
        self._due = False  # the open batch's interval has passed
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        """Queue one request; the future resolves to its own result."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((kwargs, future, self._clock()))
        if len(self._pending) >= self._max:
            self._flush()
        elif self._timer is None and not self._due:
            self._timer = self._schedule(self._interval, self._expire)
        return future

    def _busy(self) -> bool:
        return self._concurrency is not None and len(self._tasks) >= self._concurrency

    def _expire(self) -> None:
        self._timer, self._due = None, True
        if not self._busy():
            self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = False
        batch, self._pending = self._pending, []  # submit() flushes at max, so len <= max
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._due and not self._busy():
            self._flush()  # the batch that outlived its interval while every thread was busy

    async def _run(self, batch: list[tuple[dict[str, Any], asyncio.Future[Any], float]]) -> None:
        started = self._clock()
        self._on_batch(len(batch), [started - queued for _, _, queued in batch])
        try:
            results = split(await self._call(merge([kwargs for kwargs, _, _ in batch])), len(batch))
        except BaseException as exc:
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
