"""The models in memory: single-flight loads and LRU eviction at insert time. No HTTP, no files.

Cortex v0.33 evicted on a 10 s timer and overshot memory between runs until pods were
OOM-killed. Here the budgets (a count and bytes) are enforced when a load starts and when it
ends, never later:

- a load first reserves its expected size (``Loader.estimate``, e.g. the bytes on disk) and a
  place in the count, evicting least recently used entries to make room, then loads, then
  settles on the size it reports and evicts again if it was larger;
- only entries nobody holds a lease on are evicted; when every entry is pinned the load is
  admitted over budget and counted (``Observer.over_budget``) rather than deadlocking, and the
  budget is restored as soon as the leases go;
- concurrent requests for the same cold key share one load (a ``Future`` per key); different
  keys load in parallel, at most ``max_parallel_loads`` at once; a failed load reaches every
  waiter and leaves nothing behind, so the next request tries again;
- an evicted model goes through ``Loader.unload`` (the predictor's ``unload_model``), its
  references are dropped, the collector runs and, when torch is already imported, the CUDA
  cache is emptied: the memory really goes back.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("cortex.runtime")

Key = Hashable


class Loader(Protocol):
    """How the cache gets a model in and out of memory."""

    def estimate(self, key: Key) -> int:
        """The bytes a load of ``key`` is expected to take (0 when unknown)."""
        ...

    def load(self, key: Key) -> tuple[Any, int]:
        """The loaded model and the bytes it takes; whatever it raises reaches every waiter."""
        ...

    def unload(self, key: Key, model: Any) -> None:
        """Release what ``model`` holds beyond Python references (GPU memory, files)."""
        ...


class Observer(Protocol):
    """What the cache tells its metrics."""

    def requested(self, key: Key, result: str) -> None:
        """One request for ``key``: ``hit``, ``miss`` (it loads) or ``coalesced`` (it waits)."""

    def loaded(self, key: Key, seconds: float, ok: bool) -> None: ...

    def evicted(self, key: Key, reason: str) -> None:
        """Reasons: ``count``, ``bytes`` (the budgets), ``removed``, ``replaced`` (versions)."""

    def over_budget(self) -> None:
        """A load admitted over a budget because every other entry was pinned."""


class _Quiet:
    def requested(self, key: Key, result: str) -> None:
        pass

    def loaded(self, key: Key, seconds: float, ok: bool) -> None:
        pass

    def evicted(self, key: Key, reason: str) -> None:
        pass

    def over_budget(self) -> None:
        pass


@dataclass
class Entry:
    """One model in memory. ``leases`` pin it; a removed entry goes at its last release."""

    key: Key
    model: Any
    size: int
    leases: int = 0
    removed: bool = False


@dataclass
class _Pending:
    future: Future[Entry] = field(default_factory=Future)
    waiters: int = 1  # the loading thread included: the leases the entry starts with
    removed: bool = False  # removed while loading: its waiters get it, the cache does not


@dataclass(frozen=True)
class Stats:
    """What the cache holds now (for metrics and the API's description)."""

    entries: tuple[tuple[Key, int, int], ...]  # (key, bytes, leases), least recently used first
    loading: tuple[Key, ...]
    bytes: int


class ModelCache:
    """Loaded models by key, within ``max_models`` and ``max_bytes`` (None: no limit)."""

    def __init__(
        self,
        loader: Loader,
        *,
        max_models: int | None = None,
        max_bytes: int | None = None,
        max_parallel_loads: int = 4,
        observer: Observer | None = None,
    ) -> None:
        self.loader = loader
        self.max_models = max_models
        self.max_bytes = max_bytes
        self.observer: Observer = observer or _Quiet()
        self._lock = threading.Lock()
        self._loads = threading.BoundedSemaphore(max_parallel_loads)
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._pending: dict[Key, _Pending] = {}
        self._bytes = 0
        self._reserved_bytes = 0
        self._reserved_count = 0

    @contextmanager
    def lease(self, key: Key) -> Iterator[Any]:
        """The model of ``key``, loaded if need be and pinned (never evicted) inside the block."""
        entry = self.acquire(key)
        try:
            yield entry.model
        finally:
            self.release(entry)

    def get(self, key: Key) -> Any:
        """The model of ``key``, loaded if need be, not pinned."""
        entry = self.acquire(key)
        model = entry.model  # read before the release, which may evict it
        self.release(entry)
        return model

    def acquire(self, key: Key) -> Entry:
        """Pin the entry of ``key`` (loading it first when cold); pair with :meth:`release`."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.leases += 1
                self.observer.requested(key, "hit")
                return entry
            pending = self._pending.get(key)
            owner = pending is None
            if pending is None:
                pending = self._pending[key] = _Pending()
            else:
                pending.waiters += 1
            self.observer.requested(key, "miss" if owner else "coalesced")
        if owner:
            self._load(key, pending)
        return pending.future.result()

    def try_acquire(self, key: Key) -> Entry | None:
        """Pin the entry of ``key`` if it is in memory; never loads."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            entry.leases += 1
            self.observer.requested(key, "hit")
            return entry

    def release(
        self, entry: Entry, later: Callable[[Callable[[], None]], None] | None = None
    ) -> None:
        """Drop one lease; the last one of a removed entry unloads it, and an admission over
        budget is undone as soon as something can be evicted. ``later`` runs the unloading
        elsewhere (a caller on an event loop must not run ``unload_model`` and the collector)."""
        with self._lock:
            entry.leases -= 1
            victims = [(entry, "")] if entry.leases == 0 and entry.removed else []
            victims += self._make_room(count_over=False)
        if victims and later is not None:
            later(lambda: self._unload(victims))
        else:
            self._unload(victims)

    def remove(self, key: Key, reason: str = "removed") -> None:
        """Take ``key`` out: no new lease gets it; held leases keep it until released."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                if key in self._pending:
                    self._pending[key].removed = True
                return
            self._bytes -= entry.size
            entry.removed = True
            self.observer.evicted(key, reason)
            victims = [(entry, "")] if entry.leases == 0 else []
        self._unload(victims)

    def stats(self) -> Stats:
        with self._lock:
            entries = tuple((e.key, e.size, e.leases) for e in self._entries.values())
            return Stats(entries, tuple(self._pending), self._bytes)

    def busy(self, key: Key) -> bool:
        """Whether ``key`` is in memory or loading."""
        with self._lock:
            return key in self._entries or key in self._pending

    def __contains__(self, key: Key) -> bool:
        with self._lock:
            return key in self._entries

    def _load(self, key: Key, pending: _Pending) -> None:
        with self._loads:
            started, reserved = time.perf_counter(), None
            try:
                reserved = self._reserve(max(self.loader.estimate(key), 0))
                model, size = self.loader.load(key)
            except BaseException as exc:
                with self._lock:
                    if reserved is not None:
                        self._unreserve(reserved)
                    del self._pending[key]
                self.observer.loaded(key, time.perf_counter() - started, False)
                pending.future.set_exception(exc)
                return
            seconds = time.perf_counter() - started
            with self._lock:
                self._unreserve(reserved)
                entry = Entry(key, model, max(size, 0), pending.waiters, pending.removed)
                if not entry.removed:
                    self._entries[key] = entry
                    self._bytes += entry.size
                del self._pending[key]
                victims = self._make_room()
        self.observer.loaded(key, seconds, True)
        pending.future.set_result(entry)
        self._unload(victims)

    def _reserve(self, estimate: int) -> int:
        """Make room for a load before it starts: its bytes and its place in the count."""
        with self._lock:
            self._reserved_bytes += estimate
            self._reserved_count += 1
            victims = self._make_room(count_over=False)  # counted once, when the load settles
        self._unload(victims)
        return estimate

    def _unreserve(self, estimate: int) -> None:
        self._reserved_bytes -= estimate
        self._reserved_count -= 1

    def _over(self) -> str:
        """The budget exceeded now, counting loads under way: ``count``, ``bytes`` or ``""``."""
        count = len(self._entries) + self._reserved_count
        if self.max_models is not None and count > self.max_models:
            return "count"
        if self.max_bytes is not None and self._bytes + self._reserved_bytes > self.max_bytes:
            return "bytes"
        return ""

    def _make_room(self, count_over: bool = True) -> list[tuple[Entry, str]]:
        """Evict unpinned entries, least recently used first, until within budget (lock held)."""
        victims: list[tuple[Entry, str]] = []
        while reason := self._over():
            entry = next((e for e in self._entries.values() if e.leases == 0), None)
            if entry is None:
                if count_over:
                    self.observer.over_budget()
                break
            del self._entries[entry.key]
            self._bytes -= entry.size
            victims.append((entry, reason))
        return victims

    def _unload(self, victims: list[tuple[Entry, str]]) -> None:
        """Outside the lock: the user's ``unload_model`` may take its time."""
        for entry, reason in victims:
            if reason:
                self.observer.evicted(entry.key, reason)
            try:
                self.loader.unload(entry.key, entry.model)
            except Exception:
                log.exception("unloading model %s failed", entry.key)
            entry.model = None
        if victims:
            _return_memory()


def _return_memory() -> None:
    """Free what the dropped models held: reference cycles now, and CUDA's cached blocks."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
