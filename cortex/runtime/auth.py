"""Bearer-token authentication (``networking.auth``), as a plain ASGI guard around a route.

The token is the value of the environment variable ``networking.auth.token_env`` (on a cluster
it comes from a Secret through ``predictor.env_refs``). A request must carry
``Authorization: Bearer <token>``, compared in constant time; otherwise the answer is 401 with
the JSON error body and ``WWW-Authenticate: Bearer``. The token never appears in a message.

The guard wraps the app only when auth is on: an API without it runs no code of this module per
request. Health and readiness (and metrics, unless ``protect_metrics``) stay open, so the
kubelet, load balancers and Prometheus need no token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from cortex.errors import CortexError
from cortex.runtime import responses
from cortex.spec import RealtimeAPI

__all__ = ["HEALTH_PATHS", "BearerGuard", "open_paths", "required_token"]

HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
_METRICS = "/metrics"
_CHALLENGE = [(b"www-authenticate", b'Bearer realm="cortex"')]


def required_token(api: RealtimeAPI, environ: Mapping[str, str]) -> bytes | None:
    """The token requests must carry, or None when ``api`` has no auth.

    Raises :class:`CortexError` when the variable is unset, empty or not sendable in a header:
    serving without the token would be an open API, so the runtime refuses to start instead.
    """
    auth = api.networking.auth
    if auth is None:
        return None
    name = auth.token_env
    value = environ.get(name, "")
    where = f"api '{api.name}': networking.auth.token_env {name}"
    if not value:
        raise CortexError(
            f"{where} is unset or empty, and the API would be open to anyone; set it (on a "
            "cluster, predictor.env_refs reads it from a Secret)"
        )
    if value != value.strip() or not value.isprintable():
        raise CortexError(
            f"{where} holds whitespace or control characters (a trailing newline from the "
            "secret's file?), which no Authorization header can carry; remove them"
        )
    return value.encode("utf-8")


def open_paths(api: RealtimeAPI) -> frozenset[str]:
    """The routes that need no token: health and readiness, and metrics unless protected."""
    auth = api.networking.auth
    return HEALTH_PATHS if auth is not None and auth.protect_metrics else HEALTH_PATHS | {_METRICS}


class BearerGuard:
    """Answers 401 unless the request carries the token; open paths pass untouched."""

    def __init__(
        self,
        app: ASGIApp,
        token: bytes,
        open_paths: frozenset[str],
        on_refused: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_refused`` counts each 401 (the prediction route counts it as a 4XX request)."""
        self.app = app
        self.expected = b"bearer " + token
        self.open_paths = open_paths
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        rid = responses.find_request_id(scope["headers"])
        missing = not any(key == b"authorization" for key, _ in scope["headers"])
        why = "is missing" if missing else "does not match"
        body = {
            "error": f"unauthorized: the bearer token {why}; send Authorization: Bearer <token>",
            "request_id": rid,
        }
        await responses.send_json(send, 401, body, rid, extra_headers=_CHALLENGE)
        self.on_refused()

    def _allowed(self, scope: Scope) -> bool:
        for key, value in scope["headers"]:
            if key == b"authorization":
                # The scheme is case-insensitive (RFC 9110); the token is compared in full.
                given = value[:7].lower() + value[7:]
                return hmac.compare_digest(given, self.expected)
        return False
