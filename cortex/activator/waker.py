"""Wakes an API at zero: one scale write with a precondition, retried while requests are held.

While a :class:`~cortex.activator.gate.Gate` holds requests and has no ready replica, the
waker calls ``scale(replicas)`` every 1-2 s (jittered, so several activators do not write in
step) with ``replicas = ceil(held / target_replica_concurrency)`` clamped to ``[1,
max_replicas]``. ``scale`` reads the ``/scale`` subresource and writes it with the
resourceVersion it read only when it still says 0 (:mod:`cortex.activator.kube`): the first
activator to write wins, the others see replicas > 0 (or a 409) and write nothing. Retrying
matters: a write can fail (the API server is down, RBAC was fixed late, the operator scaled
the API back to 0 in the same second), and Cortex's activator, which tried once, left its
requests hanging for 20 minutes. The loop ends at the first round that finds a replica ready
or nothing held.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable

from cortex.activator.clock import Clock
from cortex.activator.gate import Gate

__all__ = ["Waker", "replicas_for"]

logger = logging.getLogger(__name__)
RETRY_SECONDS = (1.0, 2.0)


def replicas_for(held: int, target: float, max_replicas: int) -> int:
    """Replicas that serve ``held`` requests at ``target`` each: ``ceil(held / target)``."""
    return max(1, min(max_replicas, math.ceil(held / target)))


class Waker:
    """The wake loop of one API: started by the gate's ``on_cold``, ends when a replica is
    ready or nothing is held any more."""

    def __init__(
        self,
        gate: Gate,
        scale: Callable[[int], Awaitable[bool]],
        clock: Clock,
        *,
        target: float,
        max_replicas: int,
        name: str,
    ) -> None:
        self.gate = gate
        self.scale = scale
        self.clock = clock
        self.target = target
        self.max_replicas = max_replicas
        self.name = name
        self.writes = 0  # scale writes that changed the replicas
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop unless it runs (called for every request held at zero)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        await asyncio.sleep(0)  # let the requests that arrived together be counted
        while self.gate.cold_waiting:
            replicas = replicas_for(self.gate.held, self.target, self.max_replicas)
            try:
                if await self.scale(replicas):
                    self.writes += 1
                    logger.info(
                        "%s: woken, %d replicas for %d held", self.name, replicas, self.gate.held
                    )
            except Exception as exc:  # any failure is retried while requests wait
                logger.warning("%s: scale write failed (%s); retrying", self.name, exc)
            await self.clock.sleep_until(self.clock.now() + random.uniform(*RETRY_SECONDS))
