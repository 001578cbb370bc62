"""Runs sync predictor calls on a small pool of threads, handing results back to the event loop.

Why not ``loop.run_in_executor``: each call there builds a ``concurrent.futures.Future`` with its
own condition lock, chains it to an asyncio future and wakes the loop per result. Here a call is
one tuple on a ``SimpleQueue`` and one ``call_soon_threadsafe`` back, which uvloop coalesces
into a single wake-up under load. The predictor's ``__init__`` runs on the same threads, so a
library that binds state to the thread that loaded it (threads_per_process: 1) keeps working.

A thread cannot be stopped: when the caller gives up on a call (its future is cancelled, as the
request timeout does), the thread runs on until the call returns. Such a thread is *abandoned*;
:meth:`ThreadPool.abandoned` counts them and ``on_abandoned`` hears each change. A queued call
whose future was cancelled before a thread took it is skipped.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from cortex.runtime import logs

_STOP = object()
log = logging.getLogger("cortex.runtime")


class ThreadPool:
    """A fixed pool of daemon threads that run callables for one event loop."""

    def __init__(
        self,
        threads: int,
        name: str = "predict",
        on_wait: Callable[[float], None] = lambda seconds: None,
        on_abandoned: Callable[[int], None] = lambda threads: None,
    ) -> None:
        self.on_wait = on_wait  # called on the loop thread with each call's queue wait
        self.on_abandoned = on_abandoned  # called on the loop thread with abandoned()
        self.threads = threads
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._running: list[asyncio.Future[Any] | None] = [None] * threads  # by thread
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, func: Callable[..., Any], /, **kwargs: Any) -> asyncio.Future[Any]:
        """Schedule ``func(**kwargs)`` on a pool thread; await the returned future."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        future.add_done_callback(self._given_up)
        item = (func, kwargs, future, loop, contextvars.copy_context(), time.perf_counter())
        self._queue.put(item)
        return future

    def abandoned(self) -> int:
        """Threads running a call whose caller gave up on it."""
        return sum(1 for future in self._running if future is not None and future.cancelled())

    def submit(self, func: Callable[..., Any], /, **kwargs: Any) -> None:
        """Fire and forget: run ``func(**kwargs)``; exceptions are logged."""
        self._queue.put((func, kwargs, None, None, contextvars.copy_context(), 0.0))

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)

    def _given_up(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self.on_abandoned(self.abandoned())

    def _work(self, index: int) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            func, kwargs, future, loop, context, queued = item
            wait = time.perf_counter() - queued
            self._running[index] = future  # before the check: a cancel after it counts us
            try:
                if future is not None and future.cancelled():
                    continue  # its request timed out or left while it queued
                result = context.run(func, **kwargs)
            except BaseException as exc:
                if future is None:
                    logs.log_failure(log, func.__name__, exc)
                else:
                    loop.call_soon_threadsafe(_set_exception, future, exc)
            else:
                if future is not None:
                    loop.call_soon_threadsafe(self._finish, future, result, wait)
            finally:
                self._running[index] = None
                if future is not None and future.cancelled():
                    loop.call_soon_threadsafe(self._given_up, future)  # one fewer abandoned

    def _finish(self, future: asyncio.Future[Any], result: Any, wait: float) -> None:
        self.on_wait(wait)
        if not future.done():
            future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
