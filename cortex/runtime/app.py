"""The app factory: one worker process's ASGI app around its (loading or loaded) predictor.

``POST /predict`` and ``POST <endpoint>`` go to the plain ASGI ``PredictHandler``; every other
route (description, health, readiness, metrics, /docs) is an ordinary FastAPI route, whose
responses get their ``X-Request-ID`` from :class:`CortexApp` (the handler sets its own).

With ``any_path`` (``--any-path``, how a cluster runs it) a POST to any path but those routes is
a prediction, and a GET to one is the description: the route in front of the pods chooses the
path (``networking.endpoint``), so changing it needs no new pods.

With ``networking.auth`` both entry points sit behind :class:`cortex.runtime.auth.BearerGuard`;
without it nothing is wrapped, so an open API pays nothing for the feature.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cortex.contracts import RuntimeState
from cortex.runtime import auth, docs, responses
from cortex.runtime.handler import PredictHandler
from cortex.runtime.openapi import document_prediction_route
from cortex.runtime.process import ProcessState

# Where CortexApp leaves a routed request's id for the error handlers (a private scope key).
_SCOPE_REQUEST_ID = "cortex.request_id"
_ANY_PATH_ROUTE = "/{path:path}"


class CortexApp:
    """ASGI entry point: predictions go to ``PredictHandler``, everything else to FastAPI."""

    def __init__(
        self,
        runtime: ProcessState,
        routes: FastAPI,
        *,
        any_path: bool = False,
        token: bytes | None = None,
    ) -> None:
        """``token``: the bearer token every route but health (and metrics) requires."""
        self.runtime = runtime
        self.routes = routes
        self.predict: ASGIApp = PredictHandler(runtime)
        self.routed: ASGIApp = routes
        if token is not None:
            metrics = runtime.metrics
            self.predict = auth.BearerGuard(
                self.predict, token, frozenset(), on_refused=lambda: metrics.observe(401, 0.0)
            )
            self.routed = auth.BearerGuard(routes, token, auth.open_paths(runtime.api))
        self.predict_paths = frozenset({"/predict", runtime.api.endpoint})
        self.any_path = any_path
        # Our own routes, never predictions (the description routes are predictions by POST).
        described = self.predict_paths | {_ANY_PATH_ROUTE}
        self.own_paths = frozenset(
            path for route in routes.routes if (path := getattr(route, "path", "")) not in described
        )

    def _is_prediction(self, scope: Scope) -> bool:
        if scope["method"] != "POST":
            return False
        path = scope["path"]
        return path in self.predict_paths or (self.any_path and path not in self.own_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.routed(scope, receive, send)
        elif self._is_prediction(scope):
            await self.predict(scope, receive, send)
        else:
            await self._routed(scope, receive, send)

    async def _routed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A FastAPI route, its response stamped with the request's id."""
        rid = responses.find_request_id(scope["headers"])
        scope[_SCOPE_REQUEST_ID] = rid
        header = (responses.REQUEST_ID_HEADER, rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.routed(scope, receive, send_with_id)


def create_app(
    runtime: ProcessState, *, load_before_serving: bool = False, any_path: bool = False
) -> CortexApp:
    """Build the ASGI app; loading starts with the ASGI lifespan (uvicorn's startup).

    ``load_before_serving`` holds the startup until the predictor is loaded, so a process that
    joins a replica already serving (a reload, a restarted worker) takes no request before.
    ``any_path``: predictions on every path but the runtime's own (see the module docstring).
    Raises :class:`cortex.errors.CortexError` when ``networking.auth`` names a variable that is
    unset or empty (see :func:`cortex.runtime.auth.required_token`).
    """
    token = auth.required_token(runtime.api, os.environ)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(runtime.load())
        if load_before_serving:
            await task
        try:
            yield
        finally:
            task.cancel()
            runtime.close()

    api = runtime.api
    routes = FastAPI(title=api.name, lifespan=lifespan, docs_url=None, redoc_url=None)
    routes.add_exception_handler(HTTPException, _http_error(api.endpoint))

    def readiness() -> Response:
        reason = runtime.unready_reason()
        body = {
            "status": RuntimeState.READY if reason is None else runtime.status(),
            "api": api.name,
            "spec_hash": runtime.spec_hash,
        }
        if reason is not None:
            body["reason"] = reason
        return JSONResponse(body, status_code=200 if reason is None else 503)

    routes.add_api_route("/readyz", readiness, methods=["GET"])
    routes.add_api_route("/v2/health/ready", readiness, methods=["GET"])

    @routes.get("/healthz")
    @routes.get("/v2/health/live")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @routes.get("/metrics")
    def metrics() -> Response:
        data = generate_latest(runtime.metrics.registry)
        return PlainTextResponse(data, media_type=CONTENT_TYPE_LATEST)

    def describe(request: Request) -> dict[str, Any]:
        endpoint = request.url.path if any_path else api.endpoint
        body: dict[str, Any] = {
            "name": api.name,
            "kind": api.kind,
            "status": runtime.status(),
            "message": f"make a prediction by sending a POST request to {endpoint}",
            "endpoint": endpoint,
            "accepts": ["application/json", "text/plain", "multipart/form-data", "other: bytes"],
        }
        if runtime.models is not None:
            body["message"] += "?model=NAME (and &version=N for another version than latest)"
            body["models"] = runtime.models.describe()
            body["model_cache"] = runtime.models.budgets()
        return body

    routes.add_api_route(api.endpoint, describe, methods=["GET"])
    if api.endpoint != "/predict":
        routes.add_api_route("/predict", describe, methods=["GET"])
    document_prediction_route(routes, runtime)
    docs.add_docs(routes, api.name)
    if any_path:  # last: every route above wins
        routes.add_api_route(_ANY_PATH_ROUTE, describe, methods=["GET"], include_in_schema=False)
    return CortexApp(runtime, routes, any_path=any_path, token=token)


def _http_error(endpoint: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    """FastAPI's 404 and 405 in the prediction route's error shape (``error``, ``request_id``)."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # registered for HTTPException only
        method, path = request.method, request.url.path[:200]
        if exc.status_code == 404:
            error = f"no route {method} {path}; predictions go to POST {endpoint}"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            error = f"method {method} is not allowed on {path} (allowed: {allowed})"
        else:
            error = str(exc.detail)
        rid = request.scope.get(_SCOPE_REQUEST_ID) or responses.find_request_id(
            request.scope["headers"]
        )
        body = {"error": error, "request_id": rid}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    return handler
