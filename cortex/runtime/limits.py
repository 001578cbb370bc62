"""The runtime's limits that are not part of the API spec, and their command-line flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from cortex.contracts import Flag

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Limits:
    """How large a request body may be and how long it may take to arrive (a body that never
    ends must not hold a connection forever), and how long a refused client is told to wait."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    retry_after_seconds: int = 1


@dataclass(frozen=True)
class ConnectionLimits:
    """What one HTTP connection may send and hold, per worker process (docs/runtime.md).

    The defaults follow the proxies in front of a replica: Envoy (Istio, Gateway API) passes
    request heads of up to 60 KiB and 100 headers, nginx and Apache refuse request lines
    over 8 KiB. An idle keep-alive connection lives 75 s, nginx's default and longer than
    the 60 s after which AWS load balancers and ingress-nginx drop idle upstream connections:
    the proxy closes first, so it never sends a request on a connection we are closing.
    """

    max_header_bytes: int = 64 * 1024  # the whole request head, request line included: 431
    max_headers: int = 100  # 431
    max_url_bytes: int = 8 * 1024  # 414
    header_timeout: float = 10.0  # for a head to arrive, from the connection or its first byte
    keep_alive_timeout: float = 75.0  # idle between requests
    max_connections: int = 2_000  # open at once; beyond: 503


_CONNECTION_FLAGS: tuple[tuple[Flag, type[int] | type[float], str], ...] = (
    (Flag.MAX_HEADER_BYTES, int, "a larger request head (request line and headers): 431"),
    (Flag.MAX_HEADERS, int, "more request headers: 431"),
    (Flag.MAX_URL_BYTES, int, "a longer URL: 414"),
    (Flag.HEADER_TIMEOUT, float, "seconds for a request head to arrive: 408, or closed"),
    (Flag.KEEP_ALIVE_TIMEOUT, float, "seconds an idle keep-alive connection stays open"),
    (Flag.MAX_CONNECTIONS, int, "open connections per worker process; beyond: 503"),
)  # each sets the ConnectionLimits field of its name


def _field(flag: Flag) -> str:
    return flag.removeprefix("--").replace("-", "_")


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of :class:`ConnectionLimits`, defaulting to its defaults."""
    defaults = ConnectionLimits()
    for flag, kind, what in _CONNECTION_FLAGS:
        default = getattr(defaults, _field(flag))
        parser.add_argument(flag, type=_positive(kind), default=default, help=what)


def connection_limits(args: argparse.Namespace) -> ConnectionLimits:
    """The limits the flags of :func:`add_connection_flags` set."""
    return ConnectionLimits(
        **{_field(flag): getattr(args, _field(flag)) for flag, *_ in _CONNECTION_FLAGS}
    )


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number above zero."""

    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its error: "invalid int value"
    return parse
