"""One API's door in the activator: its ready replicas, and the requests held and in flight.

A request takes a *slot* on a ready endpoint (:meth:`Gate.acquire`) and gives it back when its
response is done (:meth:`Gate.release`). A replica takes at most ``max_concurrency`` requests
from this activator (the spec's ``max_replica_concurrency``), so a replica that just became
ready is never sent the whole queue at once (Knative's throttler rule: capacity = ready
replicas x concurrency). Without a free slot the request is *held*, first come first served,
in a queue of at most ``max_queue`` requests: beyond it :class:`QueueFull`, past its deadline
:class:`TimeoutError`; a held request whose client leaves is cancelled and leaves the queue.

The gate counts what the autoscaler and the operator need: :attr:`held`, :attr:`proxied`, and
:attr:`requests` (every request it saw, a counter that tells the operator the API is not idle
even between two of its polls). It calls ``on_cold`` when a request is held while no replica
is ready: the activator then wakes the API (:mod:`cortex.activator.waker`). Pure asyncio.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from cortex.activator.clock import Clock, wait_until

__all__ = ["Closed", "Endpoint", "Gate", "QueueFull", "Slot"]


class QueueFull(Exception):
    """The API's queue of held requests is full."""


class Closed(Exception):
    """The activator stops: held requests are answered now, to be retried on another one."""


class Endpoint(NamedTuple):
    """A ready replica, as its EndpointSlice lists it."""

    address: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class Slot:
    """A request's place on an endpoint; ``cold``: it waited for the API to wake."""

    endpoint: Endpoint
    cold: bool
    waited: float


class Gate:
    """Slots on an API's ready endpoints, and a bounded FIFO of the requests waiting for one."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_concurrency: int,
        max_queue: int,
        on_cold: Callable[[], None] = lambda: None,
    ) -> None:
        self.clock = clock
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.on_cold = on_cold
        self.ready: tuple[Endpoint, ...] = ()
        self.load: collections.Counter[Endpoint] = collections.Counter()
        self.held = 0
        self.requests = 0
        self.cold_since: float | None = None  # when the first request found no replica ready
        self._waiters: collections.deque[asyncio.Future[Endpoint]] = collections.deque()

    @property
    def proxied(self) -> int:
        return sum(self.load.values())

    @property
    def cold_waiting(self) -> bool:
        """Requests are held and no replica is ready: the API must wake."""
        return self.held > 0 and not self.ready

    def set_ready(self, endpoints: Iterable[Endpoint]) -> float | None:
        """The ready endpoints changed; returns the cold start (seconds from the first request
        held at zero until now) when this ends one, else None."""
        self.ready = tuple(sorted(set(endpoints)))
        cold_start = None
        if self.ready and self.cold_since is not None:
            cold_start = self.clock.now() - self.cold_since
            self.cold_since = None
        self._dispatch()
        return cold_start

    def try_acquire(self) -> Slot | None:
        """A slot now, without waiting (the warm path: no task, no timer), or None; a None
        counts the request too, :meth:`acquire` then holds it."""
        self.requests += 1
        endpoint = None if self._waiters else self._pick()
        if endpoint is None:
            return None
        self.load[endpoint] += 1
        return Slot(endpoint, cold=False, waited=0.0)

    async def acquire(self, deadline: float, counted: bool = False) -> Slot:
        """A slot on the least loaded ready endpoint, held for one until ``deadline``
        (``counted``: :meth:`try_acquire` found none a moment ago and counted the request)."""
        if not counted:
            slot = self.try_acquire()
            if slot is not None:
                return slot
        start = self.clock.now()
        if self.max_queue == 0:
            raise Closed
        if self.held >= self.max_queue:
            raise QueueFull
        cold = not self.ready
        if cold and self.cold_since is None:
            self.cold_since = start
        waiter: asyncio.Future[Endpoint] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.held += 1
        if cold:
            self.on_cold()
        try:
            endpoint = await wait_until(self.clock, waiter, deadline)
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # granted as it timed out or was cancelled
            raise
        finally:
            self.held -= 1
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        return Slot(endpoint, cold=cold, waited=self.clock.now() - start)

    def close(self) -> None:
        """Fail every held request with :class:`Closed`, and every later one."""
        self.max_queue = 0
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Closed())

    def release(self, endpoint: Endpoint) -> None:
        """Give a slot back (the response is done, or the connection was refused)."""
        self.load[endpoint] -= 1
        if self.load[endpoint] <= 0:
            del self.load[endpoint]
        self._dispatch()

    def _pick(self) -> Endpoint | None:
        free = [e for e in self.ready if self.load[e] < self.max_concurrency]
        return min(free, key=lambda e: self.load[e]) if free else None

    def _dispatch(self) -> None:
        while self._waiters:
            endpoint = self._pick()
            if endpoint is None:
                return
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self.load[endpoint] += 1
            waiter.set_result(endpoint)
