"""HTTP/1.1 spoken over a plain socket, for tests that send what a client library would not
(a head byte by byte, 10,000 headers, bytes that are not HTTP) and see what comes back."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

TIMEOUT = 30.0  # a runtime that hangs fails the test instead of stalling it


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(port: int, timeout: float = TIMEOUT) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request(
    method: str = "GET",
    path: str = "/healthz",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: test"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    if body:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def send(sock: socket.socket, data: bytes) -> bool:
    """Send all of ``data``; False when the server closed the connection first."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def read_answer(sock: socket.socket, body: bool = True) -> Answer | None:
    """The next response on ``sock`` (Content-Length framed; only its head with ``body``
    False, as for a HEAD request), or None when the server closed the connection (or reset
    it) without one. Reads the head a byte at a time, so a pipelined response after it stays
    in the socket for the next call."""
    head = b""
    try:
        while not head.endswith(b"\r\n\r\n"):
            byte = sock.recv(1)
            if not byte:
                return None
            head += byte
        status_line, *lines = head.decode("latin-1").strip().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0")) if body else 0
        content = b""
        while len(content) < length and (chunk := sock.recv(length - len(content))):
            content += chunk
    except ConnectionResetError:
        return None
    return Answer(int(status_line.split()[1]), headers, content)


def closed_by_server(sock: socket.socket) -> bool:
    """Block until the server closes ``sock`` (True), or until its timeout (False). Any bytes
    the server sends before (an error answer) are read and dropped."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def exchange(port: int, data: bytes) -> Answer | None:
    """One request on a new connection."""
    with connect(port) as sock:
        send(sock, data)
        return read_answer(sock)


def hold(port: int, count: int) -> list[socket.socket]:
    """``count`` connections the worker accepted and keeps open (each had a 200). One that
    met the connection cap before the worker saw an earlier connection close is replaced."""
    held: list[socket.socket] = []
    for _ in range(count * 5):
        sock = connect(port)
        send(sock, request())
        answer = read_answer(sock)
        if answer is not None and answer.status == 200:
            held.append(sock)
            if len(held) == count:
                return held
        else:
            sock.close()
    raise AssertionError(f"could not hold {count} connections")
