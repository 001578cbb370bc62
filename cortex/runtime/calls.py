"""How a request's kwargs reach the loaded predictor's ``predict``: directly, on a thread, or in
a batch. Built once per process after loading; the prediction route awaits the result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cortex.errors import PredictorError
from cortex.runtime import batching, metrics, predictor, threads
from cortex.spec import ServerSideBatching

Call = Callable[[dict[str, Any]], Awaitable[Any]]


def make_call(
    predictor_class: predictor.PredictorClass,
    instance: predictor.Predictor,
    pool: threads.ThreadPool,
    counters: metrics.Metrics,
    server_side_batching: ServerSideBatching | None,
) -> Call:
    """The call for this predictor; a streaming ``predict`` with batching is a PredictorError."""
    # A call's wait for a thread is its queue wait, unless the batcher measures it instead.
    pool.on_wait = counters.observe_wait if server_side_batching is None else _ignore
    call = _direct_call(predictor_class, instance, pool)
    if server_side_batching is None:
        return call
    if predictor_class.is_gen or predictor_class.is_async_gen:
        raise PredictorError(
            f"{predictor_class.file.name}: predict is a generator (streaming), which cannot be "
            "combined with server_side_batching; remove one of them"
        )

    def on_batch(size: int, waits: list[float]) -> None:
        counters.observe_batch(size)
        for wait in waits:
            counters.observe_wait(wait)

    batcher = batching.Batcher(
        call,
        server_side_batching.max_batch_size,
        server_side_batching.batch_interval,
        on_batch,
        concurrency=None if predictor_class.is_async else pool.threads,
    )
    return batcher.submit


def _direct_call(
    predictor_class: predictor.PredictorClass,
    instance: predictor.Predictor,
    pool: threads.ThreadPool,
) -> Call:
    predict = instance.predict
    call: Call
    if predictor_class.is_async_gen:

        async def call(kwargs: dict[str, Any]) -> Any:
            return predict(**kwargs)  # an async generator: the handler streams it

    elif predictor_class.is_async:

        async def call(kwargs: dict[str, Any]) -> Any:
            return await predict(**kwargs)

    else:

        def call(kwargs: dict[str, Any]) -> Awaitable[Any]:
            return pool.run(predict, **kwargs)

    return call


async def unloaded(kwargs: dict[str, Any]) -> Any:
    """The call until a predictor is loaded (the route answers 503 before reaching it)."""
    raise RuntimeError("the predictor is not loaded")


def _ignore(seconds: float) -> None:
    pass
