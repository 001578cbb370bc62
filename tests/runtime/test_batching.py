"""Server-side batching: concurrent requests become one predict call with list arguments."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cortex.runtime.batching import Batcher, BatchSizeError, merge, split
from tests.conftest import serving
from tests.runtime.harness import RuntimeProcess, write_spec

pytestmark = pytest.mark.anyio


def batching(size: int, interval: str) -> dict[str, object]:
    return {"server_side_batching": {"max_batch_size": size, "batch_interval": interval}}


async def test_concurrent_requests_are_gathered_into_batches() -> None:
    async with serving("batcher.py", predictor=batching(4, "2s")) as client:
        replies = await asyncio.gather(*(client.post("/predict", json={"x": i}) for i in range(8)))
        sizes = client.runtime.predictor.sizes
    assert sizes == [4, 4]  # full batches go at once, long before the 2 s interval
    assert [r.json()["x"] for r in replies] == list(range(8))  # each gets its own result
    assert {r.json()["batch"] for r in replies} == {4}


async def test_async_predict_is_batched_too() -> None:
    async with serving("async_batcher.py", predictor=batching(3, "2s")) as client:
        replies = await asyncio.gather(*(client.post("/predict", json={"x": i}) for i in range(6)))
        sizes = client.runtime.predictor.sizes
    assert sizes == [3, 3]
    assert [r.json() for r in replies] == [{"x": i, "batch": 3} for i in range(6)]


async def test_wrong_result_length_is_a_500_for_the_whole_batch() -> None:
    async with serving("batcher.py", predictor=batching(3, "2s")) as client:
        replies = await asyncio.gather(
            client.post("/predict?wrong=1", json={"x": 0}),
            client.post("/predict", json={"x": 1}),
            client.post("/predict", json={"x": 2}),
        )
    assert [r.status_code for r in replies] == [500, 500, 500]
    assert "got a batch of 3 requests and returned a list of 2" in replies[0].json()["error"]


async def test_batch_sizes_and_queue_wait_are_measured() -> None:
    async with serving("batcher.py", predictor=batching(2, "2s")) as client:
        await asyncio.gather(*(client.post("/predict", json={"x": i}) for i in range(4)))
        text = (await client.get("/metrics")).text
    assert 'cortex_batch_size_count{api_name="test-api"} 2.0' in text
    assert 'cortex_batch_size_sum{api_name="test-api"} 4.0' in text
    assert 'cortex_queue_wait_seconds_count{api_name="test-api"} 4.0' in text


@pytest.mark.slow
def test_batching_works_with_two_processes(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    spec = write_spec(
        tmp_path, "batcher.py", predictor={"processes_per_replica": 2, **batching(4, "100ms")}
    )
    with RuntimeProcess(spec) as rt, ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: rt.post(json={"x": i}), range(64)))
        batch_sum = rt.metric('cortex_batch_size_sum{api_name="proc-api"}')
        batches = rt.metric('cortex_batch_size_count{api_name="proc-api"}')
    assert [r.json()["x"] for r in replies] == list(range(64))
    assert len({r.json()["pid"] for r in replies}) == 2
    assert batch_sum == 64
    assert batches < 64  # some requests shared a predict call


# -- merge and split: pure functions --------------------------------------------------------------


def test_merge_turns_requests_into_one_list_per_argument_in_order() -> None:
    requests = [{"payload": i, "query_params": f"q{i}"} for i in range(3)]
    assert merge(requests) == {"payload": [0, 1, 2], "query_params": ["q0", "q1", "q2"]}


def test_merge_of_no_requests_is_empty() -> None:
    assert merge([]) == {}


def test_split_gives_result_i_to_request_i() -> None:
    assert split(["a", "b"], 2) == ["a", "b"]
    assert split(("a", "b"), 2) == ["a", "b"]


@pytest.mark.parametrize(
    ("results", "got"), [([1, 2], "a list of 2"), ({"x": 1}, "dict"), (None, "NoneType")]
)
def test_split_of_a_wrong_result_names_the_batch_and_what_came_back(results: Any, got: str) -> None:
    with pytest.raises(BatchSizeError) as caught:
        split(results, 3)
    assert str(caught.value) == (
        f"predict got a batch of 3 requests and returned {got}; "
        "with server_side_batching it must return a list with one result per request"
    )


# -- when a batch closes: a fake clock and timer, no waiting ------------------------------------


class FakeTimers:
    """Stands in for ``loop.call_later`` and the clock: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pending: list[tuple[float, Callable[[], None], FakeTimers.Handle]] = []

    class Handle:
        def __init__(self) -> None:
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def clock(self) -> float:
        return self.now

    def schedule(self, delay: float, callback: Callable[[], None]) -> FakeTimers.Handle:
        handle = FakeTimers.Handle()
        self.pending.append((self.now + delay, callback, handle))
        return handle

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.pending if t[0] <= self.now and not t[2].cancelled]
        self.pending = [t for t in self.pending if t not in due]
        for _, callback, _ in due:
            callback()

    def armed(self) -> list[float]:
        return [when for when, _, handle in self.pending if not handle.cancelled]


def make_batcher(size: int, interval: float) -> tuple[Batcher, FakeTimers, list[Any]]:
    timers, calls, observed = FakeTimers(), [], []

    async def call(merged: dict[str, list[Any]]) -> list[Any]:
        calls.append(merged)
        return [x * 10 for x in merged["x"]]

    def on_batch(size: int, waits: list[float]) -> None:
        observed.append((size, waits))

    batcher = Batcher(call, size, interval, on_batch, clock=timers.clock, schedule=timers.schedule)
    return batcher, timers, [calls, observed]


async def test_a_lone_request_waits_for_the_interval_then_goes_alone() -> None:
    batcher, timers, (calls, observed) = make_batcher(size=8, interval=0.3)
    future = batcher.submit({"x": 1})
    assert timers.armed() == [100.3]  # the batch opened with its first request
    await asyncio.sleep(0)  # let the loop run whatever is ready: nothing is
    assert calls == [] and not future.done()
    timers.advance(0.299)
    assert calls == [] and not future.done()
    timers.advance(0.001)
    assert await future == 10
    assert calls == [{"x": [1]}]
    assert observed == [(1, [pytest.approx(0.3)])]  # its queue wait, on the injected clock


async def test_a_full_batch_goes_at_once_and_its_timer_is_cancelled() -> None:
    batcher, timers, (calls, observed) = make_batcher(size=3, interval=5.0)
    futures = [batcher.submit({"x": i}) for i in range(3)]
    assert timers.armed() == []
    assert await asyncio.gather(*futures) == [0, 10, 20]
    assert calls == [{"x": [0, 1, 2]}]
    assert observed == [(3, [0.0, 0.0, 0.0])]


async def test_requests_after_a_full_batch_open_the_next_one() -> None:
    batcher, timers, (calls, _) = make_batcher(size=2, interval=1.0)
    first = [batcher.submit({"x": i}) for i in range(2)]
    timers.advance(0.5)
    late = batcher.submit({"x": 7})
    assert timers.armed() == [101.5]  # the new batch's own interval, from its first request
    assert await asyncio.gather(*first) == [0, 10]
    timers.advance(1.0)
    assert await late == 70
    assert calls == [{"x": [0, 1]}, {"x": [7]}]


async def test_a_wrong_result_length_fails_every_request_of_the_batch() -> None:
    timers = FakeTimers()

    async def call(merged: dict[str, list[Any]]) -> list[Any]:
        return [1]

    batcher = Batcher(call, 2, 1.0, clock=timers.clock, schedule=timers.schedule)
    futures = [batcher.submit({"x": i}) for i in range(2)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, BatchSizeError) for r in results)


async def test_a_batch_past_its_interval_gathers_until_a_thread_is_free() -> None:
    timers, calls, release = FakeTimers(), [], asyncio.Event()

    async def call(merged: dict[str, list[Any]]) -> list[Any]:
        calls.append(merged["x"])
        await release.wait()  # the one thread is busy until released
        return merged["x"]

    batcher = Batcher(call, 8, 1.0, concurrency=1, clock=timers.clock, schedule=timers.schedule)
    first = batcher.submit({"x": 0})
    timers.advance(1.0)
    await asyncio.sleep(0)
    assert calls == [[0]]  # the thread was free: the batch went at its interval
    second = [batcher.submit({"x": i}) for i in (1, 2)]
    timers.advance(1.0)
    third = batcher.submit({"x": 3})  # the thread is busy: the open batch keeps this one
    await asyncio.sleep(0)
    assert calls == [[0]] and timers.armed() == []
    release.set()
    assert await asyncio.gather(first, *second, third) == [0, 1, 2, 3]
    assert calls == [[0], [1, 2, 3]]  # one call once the thread was free, not [1, 2] then [3]
