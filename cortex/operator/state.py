"""What one running operator keeps in memory: settings, the API client, per-API locks and timers.

One :class:`State` per registry (see :func:`cortex.operator.handlers.build_registry`), never a
module global. The client is (re)built by the login handler whenever kopf logs in again. The
last status written per resource makes repeated, unchanged summaries cost no API call; after a
restart the status read back from the resources plays that role.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from cortex import errors
from cortex.k8s import OperatorSettings
from cortex.operator import kube, status

__all__ = ["RETRY_DELAY", "Key", "State"]

Key = tuple[str, str]  # (namespace, name) of a RealtimeAPI
logger = logging.getLogger(__name__)
RETRY_DELAY = 10.0  # seconds before a step that failed temporarily is tried again


class State:
    def __init__(
        self,
        settings: OperatorSettings,
        *,
        stall_after: float = status.STALL_AFTER,
        retry_delay: float = RETRY_DELAY,
    ) -> None:
        self.settings = settings
        self.stall_after = stall_after
        self.retry_delay = retry_delay
        self.written: dict[str, dict[str, Any]] = {}  # resource uid -> last status written
        self._kube: kube.Kube | None = None
        self._locks: dict[Key, asyncio.Lock] = {}
        self._timers: dict[Key, asyncio.Task[None]] = {}

    async def connect(self, info: kopf.ConnectionInfo) -> None:
        """Use new credentials from now on (kopf logs in again when they expire)."""
        old, self._kube = self._kube, kube.Kube(info)
        if old is not None:
            await old.close()

    def kube(self) -> kube.Kube:
        if self._kube is None:
            raise errors.TemporaryError("not logged in to the API server yet")
        return self._kube

    def lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def later(self, key: Key, delay: float, call: Callable[[], Awaitable[None]]) -> None:
        """Run ``call`` after ``delay`` seconds, replacing what was planned for ``key``;
        again after as long while it fails with a :class:`~cortex.errors.TemporaryError`."""
        planned = self._timers.pop(key, None)
        if planned is not None:
            planned.cancel()

        async def wait_and_call() -> None:
            await asyncio.sleep(delay)
            self._timers.pop(key, None)
            try:
                await call()
            except errors.TemporaryError as exc:
                logger.warning("%s/%s: %s; trying again in %.0f s", *key, exc, delay)
                self.later(key, delay, call)

        self._timers[key] = asyncio.get_running_loop().create_task(wait_and_call())

    def forget(self, key: Key, uid: str | None) -> None:
        """Drop what is kept for a deleted resource."""
        planned = self._timers.pop(key, None)
        if planned is not None:
            planned.cancel()
        self._locks.pop(key, None)
        self.written.pop(uid or "", None)

    async def close(self) -> None:
        for task in self._timers.values():
            task.cancel()
        for task in list(self._timers.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
        if self._kube is not None:
            await self._kube.close()
            self._kube = None
