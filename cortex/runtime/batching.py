"""Server-side batching: gathers concurrent requests into one ``predict`` call.

A batch opens with its first request and closes when it holds ``max_batch_size`` requests or
``batch_interval`` seconds after it opened, whichever comes first (a timer on the event loop,
no polling). ``predict`` then gets lists of equal length for each argument it declares, and
must return a list of the same length; result ``i`` answers request ``i``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Call = Callable[[dict[str, list[Any]]], Awaitable[Any]]


class BatchSizeError(RuntimeError):
    """``predict`` returned something other than a list with one result per request."""


class Batcher:
    """Collects (kwargs, future) pairs and runs them as batches through ``call``."""

    def __init__(
        self,
        call: Call,
        max_batch_size: int,
        interval: float,
        on_batch: Callable[[int, list[float]], None] = lambda size, waits: None,
    ) -> None:
        self._call = call
        self._max = max_batch_size
        self._interval = interval
        self._on_batch = on_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[Any], float]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        """Queue one request; the future resolves to its own result."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((kwargs, future, time.perf_counter()))
        if len(self._pending) >= self._max:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._interval, self._flush)
        return future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []  # submit() flushes at max, so len <= max
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[dict[str, Any], asyncio.Future[Any], float]]) -> None:
        started = time.perf_counter()
        self._on_batch(len(batch), [started - queued for _, _, queued in batch])
        names = batch[0][0].keys()
        merged = {name: [kwargs[name] for kwargs, _, _ in batch] for name in names}
        try:
            results = await self._call(merged)
            if not isinstance(results, list | tuple) or len(results) != len(batch):
                got = (
                    f"a list of {len(results)}"
                    if isinstance(results, list | tuple)
                    else (type(results).__name__)
                )
                raise BatchSizeError(
                    f"predict got a batch of {len(batch)} requests and returned {got}; "
                    "with server_side_batching it must return a list with one result per request"
                )
        except BaseException as exc:
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
