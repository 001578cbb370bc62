"""The activator's app in this process, its cluster a stub and its clock moved by hand: the
deadline of a held request, retries of a refused connection, heartbeats to an SSE client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from cortex.activator.app import DOORS, Settings, create_app
from cortex.activator.clock import ManualClock
from cortex.contracts import COLD_START_HEADER

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

API = {
    "metadata": {"namespace": "ml", "name": "echo"},
    "spec": {
        "predictor": {"type": "python", "path": "p.py"},
        "autoscaling": {"min_replicas": 0, "scale_from_zero_timeout": "5m"},
        "replicas": 0,
    },
}


def endpoint_slice(port: int, ready: bool = True) -> dict[str, Any]:
    labels = {"cortex.dev/api-name": "echo", "kubernetes.io/service-name": "api-echo"}
    return {
        "metadata": {"namespace": "ml", "name": "api-echo-x", "labels": labels},
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}],
    }


class StubKube:
    """Lists what a test gives it, never changes; records the scale writes."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, int]] = []

    async def informer(self, path: str, on_event: Any, selector: str = "") -> None:
        on_event("SYNC", [API] if path.endswith("realtimeapis") else [])
        await asyncio.Event().wait()

    async def wake(self, path: str, replicas: int) -> bool:
        self.writes.append((path, replicas))
        return True

    async def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def running(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def until(check: Any) -> None:
    async with asyncio.timeout(30):
        while not check():
            await asyncio.sleep(0.01)


async def backend() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", answer)
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_held_request_is_answered_503_when_scale_from_zero_timeout_passes() -> None:
    clock = ManualClock()
    app = create_app(StubKube(), Settings(), clock)  # type: ignore[arg-type]
    async with running(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        sent = asyncio.ensure_future(client.post("/echo", json={}))
        door = app[DOORS].doors[("ml", "echo")]
        await until(lambda: door.gate.held == 1)

        clock.advance(299)
        await asyncio.sleep(0.05)
        assert not sent.done()
        clock.advance(1)
        answer = await sent

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"


async def test_a_refused_connection_is_retried_then_served_with_the_cold_start() -> None:
    clock = ManualClock()
    app = create_app(StubKube(), Settings(), clock)  # type: ignore[arg-type]
    port = free_port()  # a ready endpoint that does not listen yet
    async with running(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        doors = app[DOORS]
        await until(lambda: ("ml", "echo") in doors.doors)
        sent = asyncio.ensure_future(client.post("/echo/run", json={}))
        await until(lambda: doors.doors[("ml", "echo")].gate.held == 1)
        clock.advance(1.5)
        doors.on_slices("ADDED", [endpoint_slice(port)])
        due = clock.now() + 0.1  # refused once: waiting 100 ms to retry
        await until(lambda: any(abs(w - due) < 1e-9 for w in clock.waiting()))
        runner = web.AppRunner(await backend())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        clock.advance(0.1)
        answer = await sent
        await runner.cleanup()

    assert answer.status_code == 200
    assert answer.json() == {"path": "/echo/run"}
    assert float(answer.headers[COLD_START_HEADER]) == pytest.approx(1.6)


async def test_an_sse_client_gets_heartbeats_while_held_then_the_answer() -> None:
    clock = ManualClock()
    app = create_app(StubKube(), Settings(heartbeat=15), clock)  # type: ignore[arg-type]
    async with running(await backend()) as upstream, running(app) as url:
        port = int(upstream.rsplit(":", 1)[1])
        doors = app[DOORS]
        await until(lambda: ("ml", "echo") in doors.doors)

        async def beat() -> None:
            await until(lambda: doors.doors[("ml", "echo")].gate.held == 1)
            clock.advance(15)

        beating = asyncio.ensure_future(beat())
        async with (
            httpx.AsyncClient(base_url=url, timeout=30) as client,
            client.stream("POST", "/echo", headers={"Accept": "text/event-stream"}) as stream,
        ):
            lines = stream.aiter_lines()
            # the stream's head was sent with the first heartbeat: the client got it already
            assert stream.headers["Content-Type"] == "text/event-stream"
            assert await anext(lines) == ": waiting for a replica"
            doors.on_slices("ADDED", [endpoint_slice(port)])
            rest = [line async for line in lines]
        await beating
    assert rest[1].startswith(f": {COLD_START_HEADER} ")
    assert '{"path": "/echo"}' in rest


async def test_a_request_for_no_api_is_404_and_a_warm_api_is_proxied_at_once() -> None:
    app = create_app(StubKube(), Settings(), ManualClock())  # type: ignore[arg-type]
    async with running(await backend()) as upstream, running(app) as url:
        doors = app[DOORS]
        await until(lambda: ("ml", "echo") in doors.doors)
        doors.on_slices("ADDED", [endpoint_slice(int(upstream.rsplit(":", 1)[1]))])
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            missing = await client.post("/other", json={})
            warm = await client.post("/echo", json={})

    assert missing.status_code == 404
    assert warm.status_code == 200
    assert COLD_START_HEADER not in warm.headers


async def test_a_replica_that_keeps_refusing_is_502_after_three_retries() -> None:
    clock = ManualClock()
    app = create_app(StubKube(), Settings(), clock)  # type: ignore[arg-type]
    async with running(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        doors = app[DOORS]
        await until(lambda: ("ml", "echo") in doors.doors)
        doors.on_slices("ADDED", [endpoint_slice(free_port())])  # nothing listens there
        sent = asyncio.ensure_future(client.post("/echo", json={}))
        for delay in (0.1, 0.2, 0.4):
            due = clock.now() + delay
            await until(lambda due=due: any(abs(w - due) < 1e-9 for w in clock.waiting()))
            clock.advance(delay)
        answer = await sent

    assert answer.status_code == 502
    assert doors.doors[("ml", "echo")].gate.proxied == 0  # every slot given back


async def test_a_warm_answer_keeps_status_and_headers_and_a_stream_comes_through_whole() -> None:
    chunks = [f"data: {i}\n\n".encode() for i in range(50)]

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/echo/stream":  # chunked: no Content-Length, relayed as it comes
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
            return response
        headers = {"X-Model-Version": "7"}
        return web.json_response({"body": (await request.text())}, status=201, headers=headers)

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{path:.*}", answer)
    app = create_app(StubKube(), Settings(), ManualClock())  # type: ignore[arg-type]
    async with running(upstream_app) as upstream, running(app) as url:
        doors = app[DOORS]
        await until(lambda: ("ml", "echo") in doors.doors)
        doors.on_slices("ADDED", [endpoint_slice(int(upstream.rsplit(":", 1)[1]))])
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            small = await client.post("/echo", content=b"hi")  # read whole, sent at once
            plain = await client.post("/echo", content=b"x" * 100_000)  # relayed in pieces
            streamed = await client.get("/echo/stream")

    assert (small.status_code, small.headers["X-Model-Version"]) == (201, "7")
    assert small.json() == {"body": "hi"}
    assert plain.status_code == 201
    assert plain.headers["X-Model-Version"] == "7"
    assert plain.headers["Content-Type"].startswith("application/json")
    assert plain.json() == {"body": "x" * 100_000}
    assert int(plain.headers["Content-Length"]) == len(plain.content)
    assert streamed.status_code == 200
    assert streamed.headers["Content-Type"] == "text/event-stream"
    assert streamed.content == b"".join(chunks)
    assert doors.doors[("ml", "echo")].gate.proxied == 0
