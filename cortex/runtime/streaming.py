"""Streams a generator's output: Server-Sent Events or plain chunked transfer.

A ``predict`` that is (or returns) a generator or an async generator streams its response:
``text/event-stream`` framing (``data: ...``) when the client accepts it, raw chunks otherwise
(bytes as they are, str as UTF-8, anything else as one JSON line). A sync generator runs on a
pool thread and hands chunks over through a bounded buffer (backpressure); a client that
disconnects stops the generator within one chunk (its ``finally`` runs).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Generator
from typing import Any

from starlette.types import Receive, Send

from cortex.runtime import codec, threads

BUFFER_CHUNKS = 16
_DONE = object()


def wants_sse(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k == b"accept" and b"text/event-stream" in v for k, v in headers)


def frame(chunk: Any, sse: bool) -> bytes:
    if sse:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if not isinstance(text, str):
            text = codec.dumps(text).decode()
        return "".join(f"data: {line}\n" for line in text.split("\n")).encode() + b"\n"
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode()
    return codec.dumps(chunk) + b"\n"


def from_thread(gen: Generator[Any, Any, Any], pool: threads.ThreadPool) -> AsyncIterator[Any]:
    """Drive a sync generator on a pool thread; the async side reads a bounded buffer."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    room = threading.Semaphore(BUFFER_CHUNKS)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in gen:
                loop.call_soon_threadsafe(queue.put_nowait, (chunk, None))
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
            loop.call_soon_threadsafe(queue.put_nowait, (_DONE, None))
        except BaseException as exc:
            loop.call_soon_threadsafe(queue.put_nowait, (_DONE, exc))
        finally:
            gen.close()

    pool.submit(produce)

    async def consume() -> AsyncIterator[Any]:
        try:
            while True:
                chunk, error = await queue.get()
                if error is not None:
                    raise error
                if chunk is _DONE:
                    return
                room.release()
                yield chunk
        finally:
            stop.set()

    return consume()


async def stream(
    chunks: AsyncIterator[Any],
    first: Any,
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]],
    sse: bool,
) -> None:
    """Send ``first`` then the rest of ``chunks``; a client disconnect cancels the stream."""
    task = asyncio.current_task()
    assert task is not None
    disconnected = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()
        task.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if first is not _DONE:
            await send({"type": "http.response.body", "body": frame(first, sse), "more_body": True})
            async for chunk in chunks:
                body = frame(chunk, sse)
                await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not disconnected.is_set():
            raise
        task.uncancel()
    finally:
        watcher.cancel()
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def first_chunk(chunks: AsyncIterator[Any]) -> Any:
    """Pull the first chunk before any header is sent, so an early error is a proper 500."""
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return _DONE
