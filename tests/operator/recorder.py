"""A recording reverse proxy: one client's own view of the API server it talks to.

Two operator processes talking to one fake API server cannot be told apart there (same field
manager, same User-Agent), so each gets a kubeconfig pointing at its own ``Recorder``, which
forwards every request (watch streams included, chunk by chunk) and notes what was asked.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp
import aiohttp.web
import yaml

from tests.fakeapi import kubeconfig

# Hop-by-hop or recomputed headers, not copied from one side to the other.
_SKIPPED = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


class Recorder:
    """``with Recorder(cluster.url, tmp_path / "a.kubeconfig") as recorder:``; ``recorder.seen``
    lists (method, path) of every request, in order."""

    def __init__(self, upstream: str, kubeconfig_path: Path) -> None:
        self.upstream = upstream
        self.kubeconfig = kubeconfig_path
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: aiohttp.web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def writes(self, *, besides: str = "") -> list[tuple[str, str]]:
        """The requests that change something, except on paths containing ``besides``."""
        with self._lock:
            seen = list(self.seen)
        return [
            (method, path)
            for method, path in seen
            if method not in ("GET", "HEAD") and not (besides and besides in path)
        ]

    def __enter__(self) -> Self:
        self._thread.start()
        url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig(url)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    async def _start(self) -> str:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        app = aiohttp.web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = aiohttp.web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _stop(self) -> None:
        assert self._runner is not None and self._session is not None
        await self._session.close()  # ends the watch streams still open
        await self._runner.cleanup()
        handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _forward(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        assert self._session is not None
        with self._lock:
            self.seen.append((request.method, request.path))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIPPED}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
        ) as upstream:
            response = aiohttp.web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _SKIPPED},
            )
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                pass  # one side went away mid-stream: a killed operator, a closing recorder
            return response
