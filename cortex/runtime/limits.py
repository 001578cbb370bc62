"""The runtime's per-request limits that are not part of the API spec (command-line knobs)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Limits:
    """How large a request body may be and how long it may take to arrive (a body that never
    ends must not hold a connection forever), and how long a refused client is told to wait."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    retry_after_seconds: int = 1
