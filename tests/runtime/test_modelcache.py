"""The model cache on its own: single-flight, parallel loads, LRU by count and bytes, pins,
failures, unloading, and memory that stays within ``max_bytes`` (measured, not trusted)."""

from __future__ import annotations

import gc
import sys
import threading
import types
import weakref
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cortex.runtime.modelcache import Key, ModelCache

DEADLINE = 30.0


class Model:
    """A stand-in model (weak-referenceable, unlike a bytearray)."""

    def __init__(self, key: Key, data: bytearray | None = None) -> None:
        self.key = key
        self.data = data


class FakeLoader:
    """Counts calls; ``gate`` (when set) is waited for inside ``load``."""

    def __init__(self, sizes: dict[Key, int] | None = None, estimate: bool = True) -> None:
        self.sizes = sizes or {}
        self.with_estimate = estimate
        self.loads: Counter[Key] = Counter()
        self.unloaded: list[Key] = []
        self.gate: Callable[[Key], None] | None = None
        self.fail: BaseException | None = None
        self._lock = threading.Lock()

    def estimate(self, key: Key) -> int:
        return self.sizes.get(key, 0) if self.with_estimate else 0

    def load(self, key: Key) -> tuple[Any, int]:
        with self._lock:
            self.loads[key] += 1
        if self.gate is not None:
            self.gate(key)
        if self.fail is not None:
            raise self.fail
        return Model(key), self.sizes.get(key, 1)

    def unload(self, key: Key, model: Any) -> None:
        self.unloaded.append(key)


class Recorder:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.evictions: list[tuple[Key, str]] = []
        self.over = 0
        self.loads: list[tuple[Key, bool]] = []
        self.changed = threading.Condition()

    def requested(self, key: Key, result: str) -> None:
        with self.changed:
            self.requests[result] += 1
            self.changed.notify_all()

    def loaded(self, key: Key, seconds: float, ok: bool) -> None:
        self.loads.append((key, ok))

    def evicted(self, key: Key, reason: str) -> None:
        self.evictions.append((key, reason))

    def over_budget(self) -> None:
        self.over += 1

    def wait_for(self, result: str, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.requests[result] >= count, DEADLINE)


def _in_threads(count: int, work: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            results[i] = work()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    return results


def test_fifty_threads_on_one_cold_key_share_one_load() -> None:
    loader, seen = FakeLoader(), Recorder()
    cache = ModelCache(loader, observer=seen)
    loader.gate = lambda key: seen.wait_for("coalesced", 49)  # every thread is waiting

    models = _in_threads(50, lambda: cache.get("a"))

    assert loader.loads == {"a": 1}
    assert all(model is models[0] for model in models) and isinstance(models[0], Model)
    assert seen.requests == {"miss": 1, "coalesced": 49}
    assert cache.stats().entries == (("a", 1, 0),)  # every lease given back


def test_different_keys_load_in_parallel_up_to_the_limit() -> None:
    loader = FakeLoader()
    cache = ModelCache(loader, max_parallel_loads=2)
    active, peak, lock = 0, 0, threading.Condition()
    go = threading.Event()

    def gate(key: Key) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            lock.notify_all()
        assert go.wait(DEADLINE)
        with lock:
            active -= 1

    loader.gate = gate
    keys = ["a", "b", "c"]
    workers = [threading.Thread(target=cache.get, args=(key,)) for key in keys]
    for worker in workers:
        worker.start()
    with lock:
        assert lock.wait_for(lambda: active == 2, DEADLINE)  # two load at once...
    assert sorted(cache.stats().loading) == keys  # ...while the third waits its turn
    go.set()
    for worker in workers:
        worker.join(DEADLINE)
    assert peak == 2 and sum(loader.loads.values()) == 3


def test_lru_by_count_evicts_the_least_recently_used() -> None:
    loader, seen = FakeLoader(), Recorder()
    cache = ModelCache(loader, max_models=2, observer=seen)
    for key in ("a", "b", "a", "c"):
        cache.get(key)
    assert [key for key, _, _ in cache.stats().entries] == ["a", "c"]
    assert loader.unloaded == ["b"] and seen.evictions == [("b", "count")]
    assert seen.requests == {"miss": 3, "hit": 1}


def test_lru_by_bytes_makes_room_before_the_load_starts() -> None:
    sizes = {"a": 40, "b": 40, "c": 40}
    loader, seen = FakeLoader(sizes), Recorder()
    cache = ModelCache(loader, max_bytes=100, observer=seen)
    held_while_loading: list[int] = []
    loader.gate = lambda key: held_while_loading.append(cache.stats().bytes)
    for key in ("a", "b", "c"):
        cache.get(key)
    assert [key for key, _, _ in cache.stats().entries] == ["b", "c"]
    assert seen.evictions == [("a", "bytes")]
    assert held_while_loading == [0, 40, 40]  # a was gone before c's 40 bytes arrived


def test_a_model_larger_than_its_estimate_evicts_when_it_settles() -> None:
    loader, seen = FakeLoader({"a": 60, "b": 60}, estimate=False), Recorder()
    cache = ModelCache(loader, max_bytes=100, observer=seen)
    cache.get("a")
    cache.get("b")
    assert [key for key, _, _ in cache.stats().entries] == ["b"]
    assert seen.evictions == [("a", "bytes")] and cache.stats().bytes == 60


def test_pinned_entries_are_never_evicted_and_over_budget_is_counted() -> None:
    loader, seen = FakeLoader(), Recorder()
    cache = ModelCache(loader, max_models=1, observer=seen)
    with cache.lease("a") as a:
        cache.get("b")  # admitted over budget next to a, evicted once it is no longer held
        assert [key for key, _, _ in cache.stats().entries] == ["a"]
        with cache.lease("c"):
            assert {key for key, _, _ in cache.stats().entries} == {"a", "c"}
            assert seen.over == 2
        assert isinstance(a, Model) and "a" in cache
        assert [key for key, _, _ in cache.stats().entries] == ["a"]  # within budget again
    assert loader.unloaded == ["b", "c"]


def test_a_raising_loader_reaches_every_waiter_and_is_not_cached() -> None:
    loader, seen = FakeLoader(), Recorder()
    cache = ModelCache(loader, observer=seen)
    loader.fail = ValueError("corrupt weights")
    loader.gate = lambda key: seen.wait_for("coalesced", 9)

    results = _in_threads(10, lambda: cache.get("a"))

    assert all(isinstance(r, ValueError) and str(r) == "corrupt weights" for r in results)
    assert loader.loads == {"a": 1} and cache.stats().entries == ()
    assert seen.loads == [("a", False)]
    loader.fail, loader.gate = None, None
    assert isinstance(cache.get("a"), Model)
    assert loader.loads == {"a": 2}


def test_a_removed_entry_finishes_its_leases_then_unloads() -> None:
    loader, seen = FakeLoader(), Recorder()
    cache = ModelCache(loader, observer=seen)
    with cache.lease("a") as model:
        cache.remove("a", "removed")
        assert "a" not in cache and loader.unloaded == []
        assert model.key == "a"  # still usable by the request that holds it
    assert loader.unloaded == ["a"] and seen.evictions == [("a", "removed")]


def test_evicted_models_are_unloaded_and_their_references_dropped() -> None:
    loader = FakeLoader()
    cache = ModelCache(loader, max_models=1)
    ref = weakref.ref(cache.get("a"))
    cache.get("b")
    gc.collect()
    assert ref() is None and loader.unloaded == ["a"]


def test_an_unload_hook_that_raises_does_not_fail_the_request() -> None:
    loader = FakeLoader()

    def broken(key: Key, model: Any) -> None:
        raise RuntimeError("boom")

    loader.unload = broken  # type: ignore[method-assign]
    cache = ModelCache(loader, max_models=1)
    cache.get("a")
    assert isinstance(cache.get("b"), Model)


def test_the_cuda_cache_is_emptied_when_torch_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    emptied: list[bool] = []
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        is_initialized=lambda: True,
        empty_cache=lambda: emptied.append(True),
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    cache = ModelCache(FakeLoader(), max_models=1)
    cache.get("a")
    assert emptied == []
    cache.get("b")
    assert emptied == [True]


MODEL_BYTES = 40 * 2**20  # above glibc's largest mmap threshold: freed memory leaves the process
SLACK = 24 * 2**20  # the interpreter's own noise


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


class ByteLoader:
    """Models that really take their size: zero-filled bytearrays (every page touched)."""

    def __init__(self) -> None:
        self.peak = 0

    def estimate(self, key: Key) -> int:
        return MODEL_BYTES  # as the bytes of a model's files on disk would say

    def load(self, key: Key) -> tuple[Any, int]:
        data = bytearray(MODEL_BYTES)
        self.peak = max(self.peak, _rss())
        return Model(key, data), len(data)

    def unload(self, key: Key, model: Any) -> None:
        model.data = None


def test_twenty_models_round_robin_with_room_for_three_stay_within_max_bytes() -> None:
    budget = 3 * MODEL_BYTES
    loader = ByteLoader()
    cache = ModelCache(loader, max_bytes=budget)
    gc.collect()
    baseline = _rss()
    reported = []
    for _ in range(2):
        for i in range(20):
            with cache.lease(f"m{i}") as model:
                assert len(model.data) == MODEL_BYTES
            reported.append(cache.stats().bytes)
    assert max(reported) == budget
    grown = loader.peak - baseline
    assert grown <= budget + SLACK, f"RSS grew {grown / 2**20:.0f} MiB over a 120 MiB budget"
    assert grown >= budget - SLACK  # the measure sees the models (it could not miss an overshoot)


def test_a_key_removed_while_loading_serves_its_waiters_and_is_not_kept() -> None:
    loader = FakeLoader()
    cache = ModelCache(loader)
    loader.gate = lambda key: cache.remove(key, "removed")  # its version vanished meanwhile
    with cache.lease("a") as model:
        assert isinstance(model, Model) and "a" not in cache
    assert loader.unloaded == ["a"] and cache.stats().bytes == 0
