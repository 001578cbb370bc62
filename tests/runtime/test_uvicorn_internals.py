"""The uvicorn internals ``cortex.runtime.worker.WorkerServer`` relies on are still there.

The worker subclasses ``uvicorn.Server``, replaces ``startup`` (it accepts connections itself)
and ``capture_signals`` (cortex's drain), and uses attributes uvicorn sets for itself. None of it
is uvicorn's public API, so pyproject.toml caps the version; these tests say what changed when
the cap is raised.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cortex.runtime import worker

VERSION = uvicorn.__version__
OVERRIDER = "cortex/runtime/worker.py (WorkerServer), cortex/runtime/connections.py"


def expect(condition: bool, what: str) -> None:
    if not condition:
        pytest.fail(f"uvicorn {VERSION}: {what}; {OVERRIDER} depends on it: adapt it", False)


async def app(scope: Any, receive: Any, send: Any) -> None:
    pass


def params(func: Any) -> list[str]:
    return list(inspect.signature(func).parameters)


def source(func: Any) -> str:
    return inspect.getsource(func)


def test_worker_server_is_a_uvicorn_server() -> None:
    expect(issubclass(worker.WorkerServer, uvicorn.Server), "WorkerServer no longer subclasses it")


def test_startup_is_a_coroutine_taking_the_sockets() -> None:
    startup = uvicorn.Server.startup
    expect(inspect.iscoroutinefunction(startup), "Server.startup is no longer a coroutine")
    expect(params(startup) == ["self", "sockets"], f"Server.startup{inspect.signature(startup)}")
    our = params(worker.WorkerServer.startup)
    expect(our == params(startup), f"WorkerServer.startup{our} differs from uvicorn's")


def test_serve_calls_the_overridden_methods_from_inside_the_event_loop() -> None:
    serve, inner = source(uvicorn.Server.serve), source(uvicorn.Server._serve)
    expect("self.capture_signals()" in serve, "Server.serve no longer enters capture_signals()")
    expect(
        "async def serve" in serve, "Server.serve is no longer async (capture_signals needs a loop)"
    )
    expect("self.startup(sockets=sockets)" in inner, "Server._serve no longer calls startup()")
    expect("self.lifespan = " in inner, "Server._serve no longer sets self.lifespan")
    expect("self.main_loop()" in inner, "Server._serve no longer runs main_loop()")


def test_capture_signals_is_a_context_manager_method() -> None:
    capture = uvicorn.Server.capture_signals
    expect(hasattr(capture, "__wrapped__"), "Server.capture_signals is no longer a contextmanager")
    expect(params(capture) == ["self"], f"Server.capture_signals{inspect.signature(capture)}")


def test_server_attributes_the_worker_reads_and_sets() -> None:
    server = uvicorn.Server(uvicorn.Config(app))
    for name in ("server_state", "started", "should_exit"):
        expect(hasattr(server, name), f"Server() has no attribute {name!r}")
    expect(server.should_exit is False and server.started is False, "should_exit/started changed")
    state = server.server_state
    expect(isinstance(getattr(state, "connections", None), set), "ServerState.connections")
    expect(isinstance(getattr(state, "tasks", None), set), "ServerState.tasks")
    shutdown, main_loop = source(uvicorn.Server.shutdown), source(uvicorn.Server.main_loop)
    expect("self.servers" in shutdown, "Server.shutdown no longer closes self.servers")
    expect("self.should_exit" in source(uvicorn.Server.on_tick) + main_loop, "should_exit unread")


def test_config_takes_the_worker_options_and_loads_the_protocol_class() -> None:
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        lifespan="on",
    )
    config.load()
    protocol = getattr(config, "http_protocol_class", None)
    expect(protocol is not None, "Config.load() no longer sets http_protocol_class")
    names = params(protocol)
    for name in ("config", "server_state", "app_state"):
        expect(name in names, f"http_protocol_class{inspect.signature(protocol)} lacks {name}")


def test_lifespan_offers_startup_should_exit_and_state() -> None:
    config = uvicorn.Config(app, lifespan="on")
    config.load()
    lifespan = config.lifespan_class(config)
    expect(inspect.iscoroutinefunction(lifespan.startup), "lifespan.startup is not a coroutine")
    expect(getattr(lifespan, "should_exit", None) is False, "lifespan.should_exit is gone")
    expect(isinstance(getattr(lifespan, "state", None), dict), "lifespan.state is not a dict")


def test_httptools_protocol_hooks_the_connection_limits_use() -> None:
    """``cortex.runtime.connections.GuardedProtocol`` overrides these and reads these."""
    proto = HttpToolsProtocol
    for name in (
        "connection_made",
        "connection_lost",
        "data_received",
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_message_complete",
        "send_400_response",
        "timeout_keep_alive_handler",
    ):
        expect(callable(getattr(proto, name, None)), f"HttpToolsProtocol.{name} is gone")
    expect(params(proto.__init__)[:4] == ["self", "config", "server_state", "app_state"], "init")
    init, received = source(proto.__init__), source(proto.data_received)
    expect("self.timeout_keep_alive = " in init, "the keep-alive timeout is no longer read once")
    expect("self.connections = server_state.connections" in init, "connections are not shared")
    expect("except httptools.HttpParserError" in received, "parser errors are not caught")
    expect("self.send_400_response(" in received, "a parser error no longer sends a 400")
    expect("self.url += url" in source(proto.on_url), "on_url no longer joins self.url")
    begin = source(proto.on_message_begin)
    expect('self.url = b""' in begin and "self.headers = []" in begin, "per-request state")
    expect("self.headers.append(" in source(proto.on_header), "headers are not kept in a list")
    on_response = source(proto.on_response_complete)
    expect("self.timeout_keep_alive_handler" in on_response, "keep-alive timer not armed")
