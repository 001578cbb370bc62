"""The activator's time, injectable: the event loop's clock, or one that tests move by hand.

Hold deadlines, wake retries and heartbeats all wait through a :class:`Clock`, so a test of a
five-minute timeout moves a :class:`ManualClock` on instead of sleeping five minutes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import Protocol, TypeVar

__all__ = ["Clock", "LoopClock", "ManualClock", "wait_until"]

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""

    async def sleep_until(self, when: float) -> None:
        """Return once :meth:`now` is at least ``when``."""


class LoopClock:
    """The running event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(max(0.0, when - self.now()))


class ManualClock:
    """A clock that moves only when :meth:`advance` is called; sleepers wake in time order."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), future))
        await future

    def waiting(self) -> list[float]:
        """When each sleeper still asleep wants to wake, soonest first (what tests wait on)."""
        return sorted(when for when, _, future in self._sleepers if not future.done())

    def advance(self, seconds: float) -> None:
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


async def wait_until(clock: Clock, awaitable: Awaitable[T], deadline: float) -> T:
    """``awaitable``'s result, or :class:`TimeoutError` once ``clock`` passes ``deadline``."""
    task = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep_until(deadline))
    try:
        await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    raise TimeoutError
