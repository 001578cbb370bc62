"""Server-side batching: concurrent requests become one predict call with list arguments."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

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


async def test_a_lone_request_waits_no_longer_than_the_batch_interval() -> None:
    async with serving("batcher.py", predictor=batching(8, "300ms")) as client:
        started = time.monotonic()
        reply = await client.post("/predict", json={"x": 1})
        waited = time.monotonic() - started
        sizes = client.runtime.predictor.sizes
    assert reply.json() == {**reply.json(), "x": 1, "batch": 1}
    assert sizes == [1]
    assert 0.25 <= waited < 2.0  # the batch closed on its timer, not on a full batch


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
