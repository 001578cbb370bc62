"""The runtime's own small responses, sent as raw ASGI messages: JSON error bodies, and the
``X-Request-ID`` every response carries (the client's, truncated, or a new one)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from starlette.types import Send

from cortex.runtime import codec

REQUEST_ID_HEADER = b"x-request-id"
MAX_REQUEST_ID = 200  # an echoed header stays short in logs and responses


def request_id(raw: bytes | None) -> str:
    """The request's id: the client's ``X-Request-ID`` value (truncated), or a new uuid4 hex."""
    rid = raw.decode("latin-1")[:MAX_REQUEST_ID] if raw else ""
    return rid or uuid.uuid4().hex


def find_request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """:func:`request_id` of the ``X-Request-ID`` among an ASGI scope's headers."""
    for key, value in headers:
        if key == REQUEST_ID_HEADER:
            return request_id(value)
    return request_id(None)


async def send_body(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    rid: str,
    close: bool,
    retry_after: int = 0,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER, rid.encode("latin-1")),
        *extra_headers,
    ]
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    if close:  # draining: let keep-alive clients move to a process that stays
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send,
    status: int,
    content: dict[str, Any],
    rid: str,
    close: bool = False,
    retry_after: int = 0,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> int:
    body = codec.dumps(content)
    await send_body(send, status, body, codec.JSON, rid, close, retry_after, extra_headers)
    return status
