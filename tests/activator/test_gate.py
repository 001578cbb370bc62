"""The gate alone, on a hand-moved clock: slots, the bounded queue, deadlines, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from cortex.activator.clock import ManualClock
from cortex.activator.gate import Endpoint, Gate, QueueFull
from cortex.activator.waker import replicas_for

pytestmark = pytest.mark.anyio

A, B = Endpoint("10.0.0.1", 8888), Endpoint("10.0.0.2", 8888)


def gate(clock: ManualClock, **bounds: int) -> Gate:
    return Gate(
        clock, max_concurrency=bounds.get("concurrency", 2), max_queue=bounds.get("queue", 10)
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_held_request_times_out_at_its_deadline_not_before() -> None:
    clock = ManualClock()
    door = gate(clock)
    waiting = asyncio.ensure_future(door.acquire(deadline=300))
    await settle()

    clock.advance(299.9)
    await settle()
    assert not waiting.done()
    clock.advance(0.1)
    await settle()

    with pytest.raises(TimeoutError):
        await waiting
    assert door.held == 0


async def test_release_never_exceeds_ready_replicas_times_concurrency() -> None:
    clock = ManualClock()
    door = gate(clock, concurrency=2)
    waiting = [asyncio.ensure_future(door.acquire(deadline=60)) for _ in range(7)]
    await settle()

    door.set_ready([A])
    await settle()
    assert sum(w.done() for w in waiting) == 2
    door.set_ready([A, B])
    await settle()
    assert sum(w.done() for w in waiting) == 4
    assert door.proxied == 4 and door.held == 3

    door.release(waiting[0].result().endpoint)
    await settle()
    assert sum(w.done() for w in waiting) == 5
    assert max(door.load.values()) <= 2


async def test_a_full_queue_refuses_at_once() -> None:
    clock = ManualClock()
    door = gate(clock, queue=2)
    held = [asyncio.ensure_future(door.acquire(deadline=60)) for _ in range(2)]
    await settle()

    with pytest.raises(QueueFull):
        await door.acquire(deadline=60)
    assert door.held == 2
    for task in held:
        task.cancel()


async def test_a_cancelled_request_leaves_the_queue_and_frees_its_slot() -> None:
    clock = ManualClock()
    door = gate(clock)
    waiting = asyncio.ensure_future(door.acquire(deadline=60))
    await settle()

    waiting.cancel()
    await settle()

    assert door.held == 0
    door.set_ready([A])
    assert door.proxied == 0


async def test_the_first_request_at_zero_calls_for_a_wake_and_the_cold_start_is_timed() -> None:
    clock = ManualClock()
    woken: list[int] = []
    door = Gate(clock, max_concurrency=1, max_queue=5, on_cold=lambda: woken.append(door.held))
    waiting = asyncio.ensure_future(door.acquire(deadline=60))
    await settle()

    clock.advance(2.5)
    cold_start = door.set_ready([A])
    slot = await waiting

    assert woken == [1]
    assert cold_start == 2.5
    assert slot.cold and slot.waited == 2.5


def test_a_wake_asks_for_enough_replicas_for_what_is_held() -> None:
    assert replicas_for(held=50, target=10, max_replicas=100) == 5
    assert replicas_for(held=51, target=10, max_replicas=100) == 6
    assert replicas_for(held=1, target=10, max_replicas=100) == 1
    assert replicas_for(held=500, target=1, max_replicas=3) == 3
