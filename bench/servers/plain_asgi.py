"""The floor and the lightest framework: the trivial predictor's work with no framework at all
(a bare ASGI callable) and as one Starlette route, both under uvicorn like the FastAPI apps.

uvicorn bench.servers.plain_asgi:raw_app         # raw ASGI: read the body, json, answer
uvicorn bench.servers.plain_asgi:starlette_app   # one Starlette POST route (+ GET /health)
"""

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Scope = dict[str, Any]


def work(payload: dict[str, Any]) -> dict[str, Any]:
    return {"label": "positive", "length": len(payload.get("text", ""))}


async def raw_app(scope: Scope, receive: Any, send: Any) -> None:
    """Every HTTP request is a prediction (a GET with no body answers the work on ``{}``, which
    makes it its own readiness probe); lifespan is acknowledged, as uvicorn expects."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = json.dumps(work(json.loads(body) if body else {})).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


async def _predict(request: Request) -> Response:
    return JSONResponse(work(await request.json()))


async def _health(request: Request) -> Response:
    return Response(b"ok")


starlette_app = Starlette(
    routes=[Route("/predict", _predict, methods=["POST"]), Route("/health", _health)]
)
