"""Memory shared by the processes of one replica: admission counts, metric slots, states.

The master process creates it before forking the workers, so every worker sees the same
memory. Each worker owns one slot of the metrics array and is its only writer (from its event
loop thread), so counting needs no lock; ``/metrics`` in any worker sums all slots.

Admission is a count of requests in flight per worker slot, compared in sum to the replica's
cap, not a shared semaphore: a semaphore (or a lock) taken by a process that dies (``os._exit``,
a segfault, the OOM killer) is never given back, while a dead worker's counts are zeroed by the
master when it reaps it (:meth:`ReplicaMemory.reclaim`). Admission adds one to its own count
first and then reads the sum, so two workers admitting at once may both refuse (a 503 that a
retry answers) but never both admit past the cap.
"""

from __future__ import annotations

import ctypes
import enum
import multiprocessing
import time
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


def _ints(array: Any) -> memoryview:
    return memoryview(array).cast("B").cast("i")


class ReplicaMemory:
    """One replica's shared memory. ``width`` is the number of doubles a worker's metrics use."""

    def __init__(self, max_concurrency: int, width: int, slots: int = MAX_SLOTS) -> None:
        ctx = multiprocessing.get_context("fork")
        self.limit: Synchronized[int] = ctx.Value(ctypes.c_int, max_concurrency, lock=False)  # type: ignore[assignment]
        # In flight and abandoned threads, per worker; read through memoryviews, which sum
        # ten times faster than the ctypes arrays (admission sums on every request).
        self.admitted = _ints(ctx.RawArray(ctypes.c_int, slots))
        self.abandoned = _ints(ctx.RawArray(ctypes.c_int, slots))
        self.progress: Synchronized[float] = ctx.Value(
            ctypes.c_double, time.monotonic(), lock=False
        )  # type: ignore[assignment]  # when a request was last admitted or finished
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
        """The replica's cap, for every worker at once (a reload may change it)."""
        self.limit.value = max_concurrency

    def try_acquire(self, index: int) -> bool:
        """Admit one request of worker ``index`` if the replica is under its cap."""
        mine, admitted = index % self.slots, self.admitted
        admitted[mine] += 1
        if sum(admitted) <= self.limit.value:
            self.progress.value = time.monotonic()
            return True
        admitted[mine] -= 1
        return False

    def release(self, index: int) -> None:
        self.admitted[index % self.slots] -= 1
        self.progress.value = time.monotonic()

    def in_flight(self) -> int:
        return sum(self.admitted)

    def stalled(self, grace: float) -> bool:
        """At the cap with nothing admitted or finished for ``grace`` seconds: nothing gets in."""
        full = sum(self.admitted) >= self.limit.value
        return full and time.monotonic() - self.progress.value > grace

    def reclaim(self, index: int) -> int:
        """Mark a reaped worker's slot gone and zero its counts; the requests it held."""
        mine = index % self.slots
        held = int(self.admitted[mine])
        self.admitted[mine] = self.abandoned[mine] = self.connections[mine] = 0
        self.worker_states[mine] = SharedState.GONE
        return held

    # stuck threads ---------------------------------------------------------------------

    def set_abandoned(self, index: int, threads: int) -> None:
        """Publish how many of worker ``index``'s threads run a call nobody waits for."""
        self.abandoned[index % self.slots] = threads

    def abandoned_threads(self) -> int:
        return sum(self.abandoned)

    def all_threads_stuck(self, threads: int) -> bool:
        """Every ready worker has all its ``threads`` stuck in calls that timed out."""
        states, abandoned = self.worker_states, self.abandoned
        ready = [i for i in range(self.slots) if states[i] == SharedState.READY]
        return bool(ready) and all(abandoned[i] >= threads for i in ready)

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
