"""While a local API sleeps (``min_replicas: 0``, idle for ``scale_to_zero_after``): the master
keeps its port and holds the requests that come, as the cluster's activator does.

The master's workers are stopped, so the master alone accepts on the listening socket
(:meth:`Holder.poll`, from its loop, no thread: it forks the workers again). A connection whose
first line is a health probe (``GET /healthz``, ``/readyz``, ``/v2/health/...``) or a scrape
(``GET /metrics``: no series while asleep) is answered at once: a sleeping API is up, and
neither ``cortex get`` nor Prometheus must wake it. Any other connection is held
and wakes the API (:attr:`Holder.wake`). At most ``max_queue_length`` are held: one more is
answered 503 + ``Retry-After`` at once, and one held for ``scale_from_zero_timeout`` gets the
same. Once the new workers are ready, :meth:`Holder.release` forks one relay process that
connects each held client to the port (where the workers now accept) and copies bytes both
ways, adding ``X-Cortex-Cold-Start: <seconds>`` to the first response of each. A client that
leaves before its first line is dropped; one that leaves after is noticed by the relay (its
request still runs once, as it would have on a replica). No HTTP is parsed but the first line
of each direction.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import time
from dataclasses import dataclass, field

from cortex import contracts
from cortex.runtime import children

__all__ = ["RETRY_AFTER_SECONDS", "Holder", "IdleTimer"]

RETRY_AFTER_SECONDS = 5
_PROBES = (b"/healthz", b"/readyz", b"/v2/health/live", b"/v2/health/ready", b"/metrics")
_HEAD_MAX = 8192  # a first line longer than this is no probe: hold it
_CHUNK = 65536


class IdleTimer:
    """Since when nothing happened: ``observe`` the activity (anything that changes while
    requests are served) with the time, read the seconds idle. The clock is the caller's."""

    def __init__(self, now: float) -> None:
        self.since = now
        self.last: object = None

    def observe(self, now: float, activity: tuple[int, float]) -> float:
        """``activity``: (in flight, a counter that moves with every request)."""
        if activity[0] > 0 or activity != self.last:
            self.since, self.last = now, activity
        return now - self.since


@dataclass
class _Held:
    sock: socket.socket
    since: float
    head: bytes = b""
    request: bool = False  # its first line came and is no probe: held for the workers
    watched: bool = True  # registered with the selector (until some of its first line came)


@dataclass
class Holder:
    """The master's door while its workers sleep: ``poll`` it, then ``release`` or ``refuse``."""

    listener: socket.socket
    max_queue: int
    timeout: float
    held: list[_Held] = field(default_factory=list)
    wake: bool = False  # a request is held: start the workers
    _selector: selectors.DefaultSelector = field(default_factory=selectors.DefaultSelector)

    def __post_init__(self) -> None:
        self.listener.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ)

    def poll(self, seconds: float) -> None:
        """Accept, answer probes, hold requests and time them out, for up to ``seconds``."""
        for key, _ in self._selector.select(seconds):
            if key.fileobj is self.listener:
                self._accept()
            else:
                self._read(key.data)
        for partial in [h for h in self.held if not h.request and not h.watched]:
            self._read(partial)  # a first line in pieces: looked at each tick, not spun on
        now = time.monotonic()
        for late in [h for h in self.held if now - h.since >= self.timeout]:
            self._answer(late, 503, "no replica became ready in time")

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:
                client, _ = self.listener.accept()
                client.setblocking(False)
                waiting = _Held(client, time.monotonic())
                self._selector.register(client, selectors.EVENT_READ, waiting)
                self.held.append(waiting)

    def _read(self, waiting: _Held) -> None:
        """Peek at a held client's first line (nothing is consumed): a probe or a request."""
        try:
            head = waiting.sock.recv(_HEAD_MAX, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            head = b""
        if not head:
            self._drop(waiting)  # the client left
            return
        waiting.head = head
        if b"\r\n" not in head and len(head) < _HEAD_MAX:
            self._unwatch(waiting)  # still readable, with nothing new: the selector would spin
            return  # the first line is still coming
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) >= 2 and parts[0] == b"GET" and parts[1].split(b"?")[0] in _PROBES:
            scrape = parts[1].startswith(b"/metrics")
            self._answer(
                waiting, 200, "scaled to zero: the next request wakes it", probe=True, scrape=scrape
            )
            return
        self._unwatch(waiting)  # held: its bytes stay in the kernel's buffer
        waiting.request = True
        if sum(h.request for h in self.held) > self.max_queue:
            self._answer(waiting, 503, "too many requests held")
            return
        self.wake = True

    def _unwatch(self, waiting: _Held) -> None:
        if waiting.watched:
            self._selector.unregister(waiting.sock)
            waiting.watched = False

    def _drop(self, waiting: _Held) -> None:
        self._unwatch(waiting)
        waiting.sock.close()
        with contextlib.suppress(ValueError):
            self.held.remove(waiting)

    def _answer(
        self, waiting: _Held, status: int, why: str, *, probe: bool = False, scrape: bool = False
    ) -> None:
        key = "status" if probe else "error"
        body = f"# {why}\n".encode() if scrape else json.dumps({key: why}).encode()
        kind = "text/plain; version=0.0.4" if scrape else "application/json"
        reason = {200: "OK", 503: "Service Unavailable"}[status]
        head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
        if status == 503:
            head += f"Retry-After: {RETRY_AFTER_SECONDS}\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        with contextlib.suppress(OSError):
            waiting.sock.setblocking(True)
            waiting.sock.settimeout(1)
            waiting.sock.sendall(head.encode() + body)
        self._drop(waiting)

    def refuse(self, why: str) -> None:
        """The workers could not start: every held request gets a 503."""
        for waiting in list(self.held):
            self._answer(waiting, 503, why)
        self.close()

    def fds(self) -> list[int]:
        """The descriptors a forked worker must close: held clients and the selector (a worker
        holding a client's copy would keep its connection open after the relay closed it)."""
        return [h.sock.fileno() for h in self.held] + [self._selector.fileno()]

    def release(self, port_address: tuple[str, int], master: int) -> int | None:
        """Hand the held clients to the workers through a relay process; its pid (None if none
        was held). The listener goes back to the workers."""
        requests = list(self.held)  # those whose first line has not come yet too
        for waiting in requests:
            self._unwatch(waiting)
        self.close()
        if not requests:
            return None
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                self.listener.close()
                children.die_with_parent(master)
                _relay_all(requests, port_address)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        for waiting in requests:
            waiting.sock.close()
        self.held.clear()
        return pid

    def close(self) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self.listener)
        self._selector.close()
        self.listener.setblocking(True)


def _relay_all(requests: list[_Held], address: tuple[str, int]) -> None:
    """In the relay process: pipe each held client to a worker until both sides are done."""
    selector = selectors.DefaultSelector()
    now = time.monotonic()
    for waiting in requests:
        upstream = socket.create_connection(address)
        cold = f"{contracts.COLD_START_HEADER}: {now - waiting.since:.3f}\r\n".encode()
        pair = _Pair(waiting.sock, upstream, cold)
        for sock in (waiting.sock, upstream):
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, pair)
    while selector.get_map():
        for key, _ in selector.select():
            pair = key.data
            if not pair.pump(key.fileobj):
                for sock in (pair.client, pair.upstream):
                    with contextlib.suppress(KeyError, ValueError):
                        selector.unregister(sock)
                    sock.close()


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    cold: bytes  # the header line for the first response's head
    buffered: bytes = b""

    def pump(self, source: object) -> bool:
        """Copy what ``source`` has to the other side; False once either side closed."""
        sender = self.client if source is self.client else self.upstream
        receiver = self.upstream if sender is self.client else self.client
        try:
            data = sender.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            return False
        if sender is self.upstream and self.cold:
            data = self.buffered + data
            line_end = data.find(b"\r\n")
            if line_end < 0:
                self.buffered = data
                return True
            data = data[: line_end + 2] + self.cold + data[line_end + 2 :]
            self.cold, self.buffered = b"", b""
        receiver.setblocking(True)
        try:
            receiver.sendall(data)
        except OSError:
            return False
        finally:
            receiver.setblocking(False)
        return True
