"""Memory shared by the processes of one replica: admission semaphore, metric slots, states.

The master process creates it before forking the workers, so every worker sees the same
memory. Each worker owns one slot of the metrics array and is its only writer (from its event
loop thread), so counting needs no lock; ``/metrics`` in any worker sums all slots.
"""

from __future__ import annotations

import ctypes
import enum
import multiprocessing
from multiprocessing.sharedctypes import Synchronized
from typing import Any


class SharedState(enum.IntEnum):
    """A state as stored in shared memory: the replica's (written by the master, read by every
    worker's /readyz) and each worker slot's (written by its worker, read by the master)."""

    LOADING = 0
    READY = 1
    DRAINING = 2
    FAILED = 3
    GONE = 4  # a slot whose worker exited


MAX_SLOTS = 256  # worker processes over the master's lifetime before slots are reused


class ReplicaMemory:
    """One replica's shared memory. ``width`` is the number of doubles a worker's metrics use."""

    def __init__(self, max_concurrency: int, width: int, slots: int = MAX_SLOTS) -> None:
        ctx = multiprocessing.get_context("fork")
        self.max_concurrency = max_concurrency
        self.semaphore: Any = ctx.BoundedSemaphore(max_concurrency)
        self.width = width
        self.slots = slots
        self.values: Any = ctx.RawArray(ctypes.c_double, width * slots)
        self.replica_state: Synchronized[int] = ctx.Value(
            ctypes.c_int, SharedState.LOADING, lock=False
        )  # type: ignore[assignment]
        self.worker_states: Any = ctx.RawArray(ctypes.c_int, slots)
        self.connections: Any = ctx.RawArray(ctypes.c_int, slots)  # open, per worker
        self.init_lock = ctx.Lock()
        self._cause: Any = ctx.RawArray(ctypes.c_char, 2048)  # why a worker failed to load

    # admission control ---------------------------------------------------------------

    def set_limit(self, max_concurrency: int) -> None:
        """A new semaphore for processes forked from now on (a reload may change the limit)."""
        if max_concurrency != self.max_concurrency:
            self.max_concurrency = max_concurrency
            self.semaphore = multiprocessing.get_context("fork").BoundedSemaphore(max_concurrency)

    def try_acquire(self) -> bool:
        return bool(self.semaphore.acquire(False))

    def release(self) -> None:
        self.semaphore.release()

    def in_flight(self) -> int:
        return self.max_concurrency - int(self.semaphore.get_value())

    # metric slots ----------------------------------------------------------------------

    def claim(self, index: int) -> int:
        """Mark slot ``index`` (wrapping) used; returns its offset in ``values``.

        Cell 0 of a slot is the used marker; a reused slot keeps counting from its old values,
        so counters stay monotonic across worker restarts.
        """
        base = (index % self.slots) * self.width
        self.values[base] = 1.0
        return base

    def used_slots(self) -> list[int]:
        values, width = self.values, self.width
        return [base for base in range(0, width * self.slots, width) if values[base]]

    def totals(self) -> list[float]:
        """Every metric cell summed over the used slots (cell 0 counts the slots)."""
        values, width = self.values, self.width
        sums = [0.0] * width
        for base in self.used_slots():
            for i in range(width):
                sums[i] += values[base + i]
        return sums

    def set_worker_state(self, index: int, state: SharedState) -> None:
        self.worker_states[index % self.slots] = state

    def worker_state(self, index: int) -> SharedState:
        return SharedState(self.worker_states[index % self.slots])

    def busier_than_a_sibling(self, index: int, connections: int) -> bool:
        """Publish this worker's open connections; True when a ready sibling has fewer."""
        mine = index % self.slots
        self.connections[mine] = connections
        states, counts = self.worker_states, self.connections
        return any(
            states[i] == SharedState.READY and counts[i] < connections
            for i in range(self.slots)
            if i != mine
        )

    def set_cause(self, message: str) -> None:
        """Record why a worker failed to load (one line; the master puts it in the status)."""
        self._cause.value = message.encode()[: len(self._cause) - 1]

    def cause(self) -> str:
        return bytes(self._cause.value).decode(errors="replace")

    @property
    def state(self) -> SharedState:
        return SharedState(self.replica_state.value)

    @state.setter
    def state(self, value: SharedState) -> None:
        self.replica_state.value = value
