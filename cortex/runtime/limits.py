"""Admission control: at most ``max_replica_concurrency`` requests in flight per replica.

Beyond the cap a request is answered 503 at once (never queued without bound). With one
process a plain counter is enough: the event loop is single-threaded.
"""

from __future__ import annotations

from typing import Protocol


class Limiter(Protocol):
    def try_acquire(self) -> bool: ...
    def release(self) -> None: ...
    def in_flight(self) -> int: ...


class LocalLimiter:
    """A counter for one process; only touched from the event loop thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count = 0

    def try_acquire(self) -> bool:
        if self._count >= self.limit:
            return False
        self._count += 1
        return True

    def release(self) -> None:
        self._count -= 1

    def in_flight(self) -> int:
        return self._count
