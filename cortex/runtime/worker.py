"""One worker process of a replica: uvicorn serving the app on the replica's shared socket.

Draining (SIGTERM from the master): readiness turns 503 at once and responses carry
``Connection: close``; after ``grace`` seconds the process stops accepting connections and
answers new requests on open connections with 503; requests in flight finish (bounded by the
graceful timeout); then it exits 0. A handoff drain (SIGUSR1, during a reload) skips the grace
window: the new processes already accept on the same socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from cortex.runtime import app, connections, logs, sharedmem
from cortex.runtime.limits import ConnectionLimits, Limits
from cortex.runtime.process import ProcessState
from cortex.spec import RealtimeAPI

log = logging.getLogger("cortex.runtime")

LINGER_SECONDS = 0.5  # after the last request, before closing idle keep-alive connections
DEFER_STEP = 0.002
MAX_DEFER = 0.05  # never leave a pending connection to a sibling for longer than this
ACCEPT_PAUSE = 0.5  # out of file descriptors: wait for some to close, then accept again
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@dataclass(frozen=True)
class WorkerOptions:
    limits: Limits
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    access_log: bool = False
    drain_grace: float = 0.0
    graceful_timeout: int = 30
    any_path: bool = False


class WorkerServer(uvicorn.Server):
    """uvicorn's server with cortex's drain: exits 0 after a signal instead of re-raising it."""

    def __init__(
        self,
        config: uvicorn.Config,
        runtime: ProcessState,
        grace: float,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.grace = grace
        self.limits = limits
        self._drain_task: asyncio.Task[None] | None = None
        self._accepting: list[asyncio.Task[None]] = []

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.drain, self.grace)
        loop.add_signal_handler(signal.SIGUSR1, self.drain, 0.0)
        # Ctrl-C in a terminal reaches every process of the group: the master handles it.
        loop.add_signal_handler(signal.SIGINT, lambda: None)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup, but accepting connections ourselves, one at a time.

        A process with more open connections than a sibling leaves new connections to it,
        instead of queueing them behind its own work (least-connections over one socket).
        """
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(3)
        config, loop = self.config, asyncio.get_running_loop()

        def protocol() -> asyncio.Protocol:
            return connections.GuardedProtocol(
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                limits=self.limits,
                counts=self.runtime.metrics,
                retry_after=self.runtime.limits.retry_after_seconds,
            )

        self.servers = []
        self._accepting = [loop.create_task(self._accept(s, protocol)) for s in sockets or []]
        self.started = True

    async def _accept(self, sock: socket.socket, protocol: Callable[[], asyncio.Protocol]) -> None:
        """Least-connections over one socket: leave a pending connection to a ready sibling
        with fewer open connections (it takes it within milliseconds), at most MAX_DEFER of
        the clock (a loaded event loop sleeps longer than asked)."""
        loop, runtime = asyncio.get_running_loop(), self.runtime
        connections = self.server_state.connections
        sock.setblocking(False)
        while True:
            await _readable(loop, sock)
            until = loop.time() + MAX_DEFER
            while loop.time() < until and runtime.shared.busier_than_a_sibling(
                runtime.slot, len(connections)
            ):
                await asyncio.sleep(DEFER_STEP)
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                continue  # a sibling took it
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                log.warning("cannot accept a connection: %s; retrying in %gs", exc, ACCEPT_PAUSE)
                await asyncio.sleep(ACCEPT_PAUSE)
                continue
            runtime.shared.busier_than_a_sibling(runtime.slot, len(connections) + 1)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.connect_accepted_socket(protocol, conn)

    def drain(self, grace: float) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._drain(grace))

    async def _drain(self, grace: float) -> None:
        runtime = self.runtime
        runtime.draining = True
        runtime.shared.set_worker_state(runtime.slot, sharedmem.SharedState.DRAINING)
        log.info("draining: %d request(s) in flight", runtime.active)
        await asyncio.sleep(grace)
        for task in self._accepting:
            task.cancel()  # stop accepting; the socket stays open in the other processes
        runtime.refusing = grace > 0  # a handoff keeps serving what still arrives
        while runtime.active:
            await asyncio.sleep(0.02)
        await asyncio.sleep(LINGER_SECONDS)
        while runtime.active:
            await asyncio.sleep(0.02)
        self.should_exit = True


def serve(
    api: RealtimeAPI,
    project_dir: Path,
    sock: socket.socket,
    shared: sharedmem.ReplicaMemory,
    slot: int,
    options: WorkerOptions,
    load_before_serving: bool,
) -> int:
    """Run one worker until drained; returns the exit code (1 when the predictor failed)."""
    # A pod's container already has predictor.env; a local runtime gets it here, per generation
    # of workers, so a reload with changed values applies them.
    os.environ.update(api.predictor.env)
    logs.configure(api.name, api.predictor.log_level)
    runtime = ProcessState(api, project_dir, shared=shared, slot=slot, limits=options.limits)
    config = uvicorn.Config(
        app.create_app(runtime, load_before_serving=load_before_serving, any_path=options.any_path),
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=options.access_log,
        timeout_graceful_shutdown=options.graceful_timeout,
        lifespan="on",
    )
    server = WorkerServer(config, runtime, options.drain_grace, options.connections)

    def stop() -> None:
        server.should_exit = True

    runtime.on_failure = stop
    server.run(sockets=[sock])
    return 1 if runtime.failure is not None else 0


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Wait until the listening socket has a pending connection."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())
