"""One HTTP connection with abuse limits: uvicorn's httptools protocol, bounded.

uvicorn bounds neither the request head nor the time it takes to arrive: a 16 MiB header and
10,000 headers were accepted, and a connection that sends nothing, or a byte a second, stayed
open for ever. :class:`GuardedProtocol` adds :class:`~cortex.runtime.limits.ConnectionLimits`:

- the head's bytes (request line and headers) and its header count: 431; the URL: 414;
- a deadline for the head, from the connection or from the first byte of the next request on a
  keep-alive connection: 408, or the connection closed when nothing came at all;
- the keep-alive timeout between requests: closed;
- the worker's open connections: beyond the cap the request is answered 503 with Retry-After.

Refusals are JSON errors (``error``, ``request_id``) with ``Connection: close``, also uvicorn's
400 for bytes that are not HTTP; each one is counted in ``cortex_refused_connections_total``.
"""

from __future__ import annotations

import asyncio
import http
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from cortex.runtime import codec, metrics, responses
from cortex.runtime.limits import ConnectionLimits

Refusal = metrics.Refusal


@dataclass(frozen=True)
class Answer:
    """What a refused request is told."""

    status: int
    reason: Refusal
    error: str
    retry_after: int = 0


class Refused(Exception):
    """Raised in a parser callback: httptools stops parsing and uvicorn calls
    ``send_400_response``, which sends the answer recorded before."""


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ConnectionLimits`, refusals counted."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        *,
        limits: ConnectionLimits,
        counts: metrics.Metrics,
        retry_after: int,
    ) -> None:
        super().__init__(config, server_state, app_state)
        self.limits, self.counts, self.retry_after = limits, counts, retry_after
        self.timeout_keep_alive = limits.keep_alive_timeout  # type: ignore[assignment]
        self._in_head = True  # the next bytes belong to a request head (or the idle gap before)
        self._head_bytes = 0
        self._head_since: float | None = None  # when the pending head began (loop time)
        self._head_timer: asyncio.TimerHandle | None = None
        self._over_cap = False
        self._answer: Answer | None = None

    # the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._over_cap = len(self.connections) > self.limits.max_connections
        self._head_begins()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser no more head bytes than the limit allows.

        A head that starts in the same read as the previous request's body ends is counted
        from the next read only: the parser alone knows where the body ended. One read is at
        most the event loop's buffer (256 KiB), so memory stays bounded all the same.
        """
        limit = self.limits.max_header_bytes
        if not self._in_head or len(data) < limit - self._head_bytes:  # all but huge heads
            self._head_bytes += len(data) if self._in_head else 0
            super().data_received(data)
            return
        while data and not self.transport.is_closing():
            if self._in_head:
                room = limit - self._head_bytes
                chunk, data = data[:room], data[room:]
                self._head_bytes += len(chunk)
            else:
                chunk, data = data, b""
            super().data_received(chunk)
            if self._in_head and self._head_bytes >= limit and not self.transport.is_closing():
                error = f"the request head is larger than the limit of {limit} bytes"
                self._refuse(Answer(431, Refusal.HEADER_BYTES, error))

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self.counts.refuse(Refusal.IDLE)
        super().timeout_keep_alive_handler()

    # parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begins()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)  # the URL arrives in pieces; uvicorn joins them in self.url
        if len(self.url) > self.limits.max_url_bytes:
            limit = self.limits.max_url_bytes
            error = f"the URL is longer than the limit of {limit} bytes"
            self._refuse_in_parser(Answer(414, Refusal.URL_BYTES, error))

    def on_headers_complete(self) -> None:
        """The head is in (the header count is checked here: the byte limit already bounds
        what the headers hold, and a check per header would cost every request)."""
        self._head_since = None
        self._in_head, self._head_bytes = False, 0
        limits = self.limits
        if len(self.headers) > limits.max_headers:
            error = f"the request has more than the limit of {limits.max_headers} headers"
            self._refuse_in_parser(Answer(431, Refusal.HEADER_COUNT, error))
        if self._over_cap:
            error = f"this process has {limits.max_connections} connections open; retry"
            self._refuse_in_parser(Answer(503, Refusal.CONNECTIONS, error, self.retry_after))
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        super().on_message_complete()

    # refusals ------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error: ours when a limit stopped the parser."""
        answer = self._answer or Answer(400, Refusal.MALFORMED, "the request is not valid HTTP")
        self._refuse(answer)

    def _refuse_in_parser(self, answer: Answer) -> None:
        self._answer = answer
        raise Refused(answer.error)

    def _refuse(self, answer: Answer) -> None:
        """Count, answer with the JSON error and close; only close while the response to a
        previous (pipelined) request is still being written, which the answer would cut."""
        self.counts.refuse(answer.reason)
        self._stop_head_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()
            return
        rid = responses.find_request_id(self.headers or [])
        body = codec.dumps({"error": answer.error, "request_id": rid})
        headers = [
            *self.server_state.default_headers,
            (b"content-type", codec.JSON),
            (b"content-length", str(len(body)).encode()),
            (responses.REQUEST_ID_HEADER, rid.encode("latin-1")),
            (b"connection", b"close"),
        ]
        if answer.retry_after:
            headers.append((b"retry-after", str(answer.retry_after).encode()))
        phrase = http.HTTPStatus(answer.status).phrase
        head = [f"HTTP/1.1 {answer.status} {phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()

    # the head deadline ---------------------------------------------------------------

    def _head_begins(self) -> None:
        """Start the head's clock. One timer per connection, re-armed when it fires, not one
        per request: a busy keep-alive connection costs a clock read per request."""
        if self._head_since is None:
            self._head_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._check_head)

    def _stop_head_timer(self) -> None:
        self._head_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _check_head(self) -> None:
        self._head_timer = None
        if self._head_since is None or self.transport.is_closing():
            return  # no head pending: the next one starts the timer again
        left = self._head_since + self.limits.header_timeout - self.loop.time()
        if left > 0:
            self._head_timer = self.loop.call_later(left, self._check_head)
        else:
            self._head_too_slow()

    def _head_too_slow(self) -> None:
        """A 408 for a head begun, else just close: there is nothing to answer."""
        if self._head_bytes:
            timeout = self.limits.header_timeout
            error = f"the request head did not arrive within {timeout:g}s"
            self._refuse(Answer(408, Refusal.HEADER_TIMEOUT, error))
        else:
            self.counts.refuse(Refusal.HEADER_TIMEOUT)
            self.transport.close()
