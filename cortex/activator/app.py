"""The activator's process: its HTTP server, its informers, and how they are wired.

``GET /healthz`` (alive), ``GET /readyz`` (200 once both informers listed: before that every
request would be a 404), ``GET /metrics`` (:mod:`cortex.activator.metrics`); any other
request is for an API (:mod:`cortex.activator.proxy`). The three paths are reserved for the
same reason the runtime reserves them: no API endpoint may use them (cortex/spec).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cortex import contracts
from cortex.activator.clock import Clock, LoopClock
from cortex.activator.doors import Doors
from cortex.activator.kube import Kube
from cortex.activator.metrics import ActivatorMetrics
from cortex.activator.proxy import Proxy

__all__ = ["Settings", "create_app", "serve"]

logger = logging.getLogger(__name__)
SLICES_PATH = "/apis/discovery.k8s.io/v1{scope}/endpointslices"
APIS_PATH = f"/apis/{contracts.API_VERSION}{{scope}}/{contracts.PLURAL}"
PROXY = web.AppKey("proxy", Proxy)
DOORS = web.AppKey("doors", Doors)


@dataclass(frozen=True)
class Settings:
    """``namespace``: the one to watch (None: all); ``heartbeat``: seconds between SSE comments
    to a held client; ``max_body_bytes``: the largest request body held."""

    host: str = "0.0.0.0"
    port: int = contracts.DEFAULT_PORT
    namespace: str | None = None
    heartbeat: float = 15.0
    max_body_bytes: int = 64 * 2**20


def create_app(kube: Kube, settings: Settings, clock: Clock | None = None) -> web.Application:
    """The activator's application; its informers run while it does."""
    clock = clock or LoopClock()

    def woke(key: tuple[str, str], seconds: float) -> None:
        metrics.cold_start.labels(*key).observe(seconds)

    doors = Doors(clock, kube.wake, woke)
    metrics = ActivatorMetrics(doors.gates)
    app = web.Application(client_max_size=settings.max_body_bytes)
    scope = f"/namespaces/{settings.namespace}" if settings.namespace else ""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready = doors.synced >= {"apis", "slices"}
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def scrape(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def forward(request: web.Request) -> web.StreamResponse:
        door = doors.match(request.host, request.path)
        if door is None:
            return web.json_response({"error": f"no API serves {request.path}"}, status=404)
        response = await app[PROXY].serve(request, door)
        metrics.answered(door.target.key, response.status)
        return response

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent"),
        ) as session:  # fmt: skip
            app[PROXY] = Proxy(clock, session, settings.heartbeat)
            tasks = [
                asyncio.create_task(kube.informer(APIS_PATH.format(scope=scope), doors.on_apis)),
                asyncio.create_task(
                    kube.informer(
                        SLICES_PATH.format(scope=scope), doors.on_slices, contracts.LABEL_API_NAME
                    )
                ),
            ]
            yield
            for task in tasks:
                task.cancel()
            for door in doors.doors.values():
                door.waker.stop()
            await kube.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", scrape)
    app.router.add_route("*", "/{path:.*}", forward)
    app[DOORS] = doors
    return app


async def serve(app: web.Application, settings: Settings, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set. A client that leaves cancels its handler: a held request
    is dropped from its queue at once, not when its deadline passes."""
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    logger.info("activator listening on %s:%d", settings.host, settings.port)
    try:
        await stop.wait()
        for door in app[DOORS].doors.values():
            door.gate.close()  # answered 503 now: the client retries on another activator
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
