"""What one running operator keeps in memory: settings, the API client, the work queue, timers.

One :class:`State` per registry (see :func:`cortex.operator.handlers.build_registry`), never a
module global. The client is (re)built by the login handler whenever kopf logs in again.

The work queue is level-triggered, like a controller-runtime queue: :meth:`State.wake` marks an
API dirty; one task per API runs the reconcile function while it is dirty, so a burst of events
(a rollout, a status write) costs one pass, and two passes of one API never overlap. A pass
returns how long to wait before the next one when it must be retried (None: done);
:meth:`State.later` plans that. :meth:`State.forget` drops everything kept for an API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from cortex import errors
from cortex.k8s import OperatorSettings
from cortex.operator import idle, kube, metrics, routing, status
from cortex.operator.cache import Cache, Key

__all__ = ["RESYNC_SECONDS", "RETRY_DELAY", "STALL_AFTER", "Key", "State"]

Pass = Callable[[Key], Awaitable[float | None]]
logger = logging.getLogger(__name__)
RETRY_DELAY = 1.0  # seconds before the first retry of a pass that failed temporarily
MAX_RETRY_DELAY = 300.0  # the backoff doubles up to this
RESYNC_SECONDS = 600.0  # every API is checked again this often, events or not
STARTUP_SECONDS = 60.0  # how long a start reports when it is in sync
STALL_AFTER = status.STALL_AFTER


class State:
    def __init__(
        self,
        settings: OperatorSettings,
        *,
        stall_after: float = STALL_AFTER,
        retry_delay: float = RETRY_DELAY,
        resync: float = RESYNC_SECONDS,
        clock: Callable[[], float] | None = None,
        idle_poll: float = idle.POLL_SECONDS,
    ) -> None:
        self.settings = settings
        self.cache = Cache()
        self.claims = routing.Claims()  # the host and path each API's route claims
        self.stall_after = stall_after
        self.retry_delay = retry_delay
        self.resync = resync
        self.written: dict[Key, dict[str, Any]] = {}  # the last status written per API
        self.seen: dict[Key, tuple[str, int, Any]] = {}  # (uid, generation, replicas) reconciled
        self.failures: dict[Key, int] = {}  # temporary failures in a row (backoff)
        self._kube: kube.Kube | None = None
        self._dirty: set[Key] = set()
        self._workers: dict[Key, asyncio.Task[None]] = {}
        self._timers: dict[Key, asyncio.Task[None]] = {}
        self._run: Pass | None = None
        self._resync: asyncio.Task[None] | None = None
        self._keys: Callable[[], list[Key]] = list
        self._serving_since: float | None = None  # during the first minute of serving
        self._announced = 0  # the number of APIs last said to be in sync
        self.metrics = metrics.OperatorMetrics(self.snapshot)
        self.idle = idle.Idle()  # APIs that may scale to zero: since when they are idle
        self.clock: Callable[[], float] = clock or time.monotonic
        self.idle_poll = idle_poll

    # --- the API client --------------------------------------------------------------------

    async def connect(self, info: kopf.ConnectionInfo) -> None:
        """Use new credentials from now on (kopf logs in again when they expire)."""
        old, self._kube = self._kube, kube.Kube(info)
        if old is not None:
            await old.close()

    def kube(self) -> kube.Kube:
        if self._kube is None:
            raise errors.TemporaryError("not logged in to the API server yet")
        return self._kube

    # --- the work queue --------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        return self._run is not None

    def serve(self, run: Pass, keys: Callable[[], list[Key]]) -> None:
        """Use ``run`` for every pass from now on (once the handlers have kopf's indexes), and
        :meth:`relist` the APIs of ``keys()`` every ``resync`` seconds."""
        self._run = run
        self._keys = keys
        self._serving_since = time.monotonic()

        async def resync() -> None:
            while True:
                await asyncio.sleep(self.resync)
                self.relist()

        self._resync = asyncio.get_running_loop().create_task(resync())

    def relist(self) -> None:
        """Wake every API, whose next passes list the cluster again (dropping what is gone):
        after kopf relisted, whose events never tell of deletions, and every ``resync``."""
        self.cache.primed.clear()
        for key in self._keys():
            self.wake(key)

    def wake(self, key: Key) -> None:
        """Reconcile ``key`` soon: now, or right after the pass under way."""
        self._dirty.add(key)
        if key not in self._workers and self._run is not None:
            self._workers[key] = asyncio.get_running_loop().create_task(self._work(key))

    async def _work(self, key: Key) -> None:
        assert self._run is not None
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                self.metrics.passes += 1
                try:
                    delay = await self._run(key)
                except Exception:  # a bug must not stop the queue; retry later
                    logger.exception("%s/%s: reconcile failed", *key)
                    delay = self.backoff(key)
                if delay is not None:
                    self.later(key, delay)
        finally:
            self._workers.pop(key, None)
            if self._serving_since is not None and not self._workers:
                self._announce_sync()

    def _announce_sync(self) -> None:
        """Log when every API known so far has had a pass, during the first minute (how long a
        start takes to settle; the watches deliver the APIs bit by bit, so a start may log a
        few times, with growing counts)."""
        assert self._serving_since is not None
        seconds = time.monotonic() - self._serving_since
        if seconds > STARTUP_SECONDS:
            self._serving_since = None
            return
        keys = self._keys()
        if len(keys) != self._announced and all(key in self.seen for key in keys):
            logger.info("in sync: %d APIs checked %.1f s after the first event", len(keys), seconds)
            self._announced = len(keys)

    def backoff(self, key: Key, at_least: float = 0.0) -> float:
        """The next delay after one more temporary failure in a row; ``at_least`` what the
        API server asked for (``Retry-After``)."""
        failures = self.failures[key] = self.failures.get(key, 0) + 1
        self.metrics.errors["Temporary"] += 1
        delay = max(self.retry_delay * 2 ** (failures - 1), at_least)
        return float(min(MAX_RETRY_DELAY, delay))

    def later(self, key: Key, delay: float) -> None:
        """Wake ``key`` after ``delay`` seconds, replacing what was planned for it."""
        planned = self._timers.pop(key, None)
        if planned is not None:
            planned.cancel()

        async def wait_and_wake() -> None:
            await asyncio.sleep(delay)
            self._timers.pop(key, None)
            self.wake(key)

        self._timers[key] = asyncio.get_running_loop().create_task(wait_and_wake())

    def tracked(self) -> int:
        """How many APIs something is kept for (0 once every API is deleted)."""
        keys = set(self.written) | set(self.seen) | set(self.failures) | self.cache.keys()
        return len(keys | set(self._timers) | set(self._workers) | self._dirty)

    def snapshot(self) -> metrics.Snapshot:
        """What the operator's gauges show now."""
        apis = self.cache.apis
        statuses = {key: self.written.get(key, api.status) for key, api in apis.items()}
        queued = len(self._dirty | set(self._workers))
        return metrics.Snapshot(apis=len(apis), queued=queued, statuses=statuses)

    def forget(self, key: Key) -> None:
        """Drop what is kept for a deleted API."""
        planned = self._timers.pop(key, None)
        if planned is not None:
            planned.cancel()
        self._dirty.discard(key)
        for kept in (self.written, self.seen, self.failures):
            kept.pop(key, None)
        self.idle.drop(key)

    async def close(self) -> None:
        tasks = [*self._timers.values(), *self._workers.values()]
        if self._resync is not None:
            tasks.append(self._resync)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
        self._workers.clear()
        if self._kube is not None:
            await self._kube.close()
            self._kube = None
