"""Runs one API's runtime under uvicorn in the foreground (the container's entry point)."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from cortex.errors import CortexError
from cortex.runtime import logs
from cortex.runtime.app import DEFAULT_MAX_BODY_BYTES, Runtime, Settings, create_app
from cortex.spec import RealtimeAPI, load_specs

log = logging.getLogger("cortex.runtime")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cortex.runtime", description="Serve one API of a cortex.yaml over HTTP."
    )
    parser.add_argument("--spec", default="cortex.yaml", help="the API spec file (cortex.yaml)")
    parser.add_argument("--api", help="the API to serve (default: the only one in the file)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=8888, help="port to listen on (8888)")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="larger request bodies get 413",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request (slower)")
    return parser.parse_args(argv)


def select_api(apis: list[RealtimeAPI], name: str | None, spec: str) -> RealtimeAPI:
    names = [api.name for api in apis]
    if name is None:
        if len(apis) == 1:
            return apis[0]
        raise CortexError(
            f"{spec} defines {len(apis)} APIs ({', '.join(names)}); choose one: --api"
        )
    for api in apis:
        if api.name == name:
            return api
    raise CortexError(f"{spec}: no API named {name!r} (defined: {', '.join(names)})")


class Server(uvicorn.Server):
    """uvicorn's server, draining on SIGTERM and exiting 0 afterwards (not re-raising it)."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
            return
        self.runtime.state = "draining" if self.runtime.ready else self.runtime.state
        log.info("received %s: draining in-flight requests, then exiting", signal.Signals(sig).name)
        self.should_exit = True


def bind(host: str, port: int) -> socket.socket:
    """Listen before loading anything, so a taken port fails in milliseconds, not after init."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec_path = Path(args.spec).resolve()
    try:
        api = select_api(load_specs(spec_path), args.api, args.spec)
    except CortexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure(api.name, api.predictor.log_level)
    runtime = Runtime(api, spec_path.parent, settings=Settings(max_body_bytes=args.max_body_bytes))
    config = uvicorn.Config(
        create_app(runtime),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=args.access_log,
        timeout_graceful_shutdown=30,
    )
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s (choose another --port)", args.host, args.port, exc)
        return 2
    server = Server(config, runtime)

    def stop() -> None:
        server.should_exit = True

    runtime.on_failure = stop
    server.run(sockets=[sock])
    if runtime.failure is not None:
        log.error("exiting: the predictor could not be loaded")
        return 1
    return 0
