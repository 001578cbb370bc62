"""The app factory: one replica's ASGI application around a loaded (or loading) predictor.

The prediction route (``POST /predict`` and ``POST <endpoint>``) is a plain ASGI handler in
front of FastAPI: it reads the body itself and skips FastAPI's dependency and validation
machinery, which costs more than a trivial predictor. Every other route (description,
health, readiness, metrics, /docs) is an ordinary FastAPI route.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from cortex.errors import PredictorError
from cortex.runtime import codec, logs
from cortex.runtime.limits import Limiter, LocalLimiter
from cortex.runtime.metrics import Metrics
from cortex.runtime.predictor import PredictorClass, load_predictor_class
from cortex.runtime.workers import ThreadWorkers
from cortex.spec import RealtimeAPI

log = logging.getLogger("cortex.runtime")

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class Settings:
    """Runtime knobs that are not part of the API spec."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retry_after_seconds: int = 1


class Runtime:
    """One serving process: the predictor, its readiness, limits, workers and metrics."""

    def __init__(
        self,
        api: RealtimeAPI,
        project_dir: Path,
        *,
        registry: CollectorRegistry | None = None,
        limiter: Limiter | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.api = api
        self.project_dir = project_dir
        self.settings = settings or Settings()
        self.limiter = limiter or LocalLimiter(api.autoscaling.max_replica_concurrency)
        self.metrics = Metrics(api.name, registry or CollectorRegistry(), self.limiter.in_flight)
        self.state = "loading"
        self.failure: BaseException | None = None
        self.predictor: Any = None
        self.spec: PredictorClass | None = None
        self.workers: ThreadWorkers | None = None
        self.on_failure: Callable[[], None] = lambda: None

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    async def load(self) -> None:
        """Import the predictor class and run ``__init__(config)`` on a worker thread.

        Failures are logged with their traceback and kept in ``self.failure``; the process
        owner decides to exit (``python -m cortex.runtime`` exits 1).
        """
        predictor = self.api.predictor
        started = time.perf_counter()
        self.workers = ThreadWorkers(predictor.threads_per_process)
        try:
            # Importing the user's module (torch, transformers...) and __init__ both run on a
            # worker thread: the event loop keeps answering /healthz and /readyz meanwhile.
            self.spec = await self.workers.run(self._load_class)
            self.predictor = await self.workers.run(
                self.spec.instantiate, config=dict(predictor.config)
            )
        except PredictorError as exc:
            self.state, self.failure = "failed", exc
            log.error("predictor cannot be loaded: %s", exc)
            self.on_failure()
            return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.state, self.failure = "failed", exc
            log.error("predictor __init__ raised %s: %s", type(exc).__name__, exc, exc_info=exc)
            self.on_failure()
            return
        seconds = time.perf_counter() - started
        self.metrics.load_seconds.set(seconds)
        self.state = "ready"
        log.info("predictor loaded in %.2fs; api %s is ready", seconds, self.api.name)

    def _load_class(self) -> PredictorClass:
        predictor = self.api.predictor
        python_path = self.project_dir / predictor.python_path if predictor.python_path else None
        return load_predictor_class(self.project_dir / predictor.path, python_path=python_path)

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()


class CortexApp:
    """ASGI entry point: predictions go to ``predict``, everything else to FastAPI."""

    def __init__(self, runtime: Runtime, routes: FastAPI) -> None:
        self.runtime = runtime
        self.routes = routes
        self.predict_paths = frozenset({"/predict", runtime.api.endpoint})
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.predict_paths
        ):
            await self.predict(scope, receive, send)
        else:
            await self.routes(scope, receive, send)

    async def predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        started = time.perf_counter()
        rid, content_type, length = _scan_headers(scope["headers"])
        token = logs.request_id.set(rid)
        status = 503
        try:
            if not runtime.ready:
                status = await _send_json(
                    send,
                    503,
                    {"error": f"api is not ready ({runtime.state})"},
                    rid,
                    retry_after=runtime.settings.retry_after_seconds,
                )
            elif not runtime.limiter.try_acquire():
                status = await _send_json(
                    send,
                    503,
                    {"error": "too many requests in flight; retry later"},
                    rid,
                    retry_after=runtime.settings.retry_after_seconds,
                )
            else:
                try:
                    status = await self._admitted(scope, receive, send, rid, content_type, length)
                finally:
                    runtime.limiter.release()
        finally:
            runtime.metrics.observe(status, time.perf_counter() - started)
            logs.request_id.reset(token)

    async def _admitted(
        self, scope: Scope, receive: Receive, send: Send, rid: str, content_type: str, length: int
    ) -> int:
        runtime = self.runtime
        spec = runtime.spec
        assert spec is not None  # ready implies loaded
        limit = runtime.settings.max_body_bytes
        if length > limit:
            return await _send_json(send, 413, _too_large(limit), rid)
        body = await _read_body(receive, limit)
        if body is None:
            return await _send_json(send, 413, _too_large(limit), rid)
        try:
            kwargs = await _predict_kwargs(spec.predict_args, scope, body, content_type)
        except codec.PayloadError as exc:
            return await _send_json(send, 400, {"error": str(exc), "request_id": rid}, rid)
        try:
            if spec.is_async:
                result = await runtime.predictor.predict(**kwargs)
            else:
                assert runtime.workers is not None
                result = await runtime.workers.run(runtime.predictor.predict, **kwargs)
            status = await _send_result(scope, receive, send, result, rid)
        except Exception as exc:
            log.error("predict failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
            error = f"{type(exc).__name__}: {exc}"[:1000]
            return await _send_json(send, 500, {"error": error, "request_id": rid}, rid)
        if spec.post_predict_args is not None:
            self._post_predict(spec.post_predict_args, kwargs, result)
        return status

    def _post_predict(self, args: tuple[str, ...], kwargs: dict[str, Any], result: Any) -> None:
        values = {**kwargs, "response": result}
        call_kwargs = {name: values.get(name) for name in args}
        hook = self.runtime.predictor.post_predict
        if asyncio.iscoroutinefunction(hook):
            task = asyncio.get_running_loop().create_task(_guard(hook(**call_kwargs)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            assert self.runtime.workers is not None
            self.runtime.workers.submit(hook, **call_kwargs)


async def _guard(coro: Any) -> None:
    try:
        await coro
    except Exception as exc:
        log.error("post_predict failed: %s: %s", type(exc).__name__, exc, exc_info=exc)


def _scan_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, str, int]:
    rid = content_type = ""
    length = 0
    for key, value in headers:
        if key == b"x-request-id":
            rid = value.decode("latin-1")[:200]
        elif key == b"content-type":
            content_type = value.decode("latin-1")
        elif key == b"content-length" and value.isdigit():
            length = int(value)
    return rid or uuid.uuid4().hex, content_type, length


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it grows past ``limit`` bytes."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= limit else None
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _predict_kwargs(
    args: tuple[str, ...], scope: Scope, body: bytes, content_type: str
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if "payload" in args:
        mime, charset = codec.media_type(content_type)
        if codec.is_form(mime):
            kwargs["payload"] = await Request(scope, _replay(body)).form()
        else:
            kwargs["payload"] = codec.decode_body(body, mime, charset)
    if "query_params" in args:
        kwargs["query_params"] = QueryParams(scope["query_string"])
    if "headers" in args:
        kwargs["headers"] = Headers(scope=scope)
    return kwargs


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send_result(scope: Scope, receive: Receive, send: Send, result: Any, rid: str) -> int:
    if isinstance(result, Response):
        result.headers.setdefault("x-request-id", rid)
        await result(scope, receive, send)
        return result.status_code
    try:
        body, content_type = codec.encode_result(result)
    except TypeError as exc:
        raise TypeError(f"predict returned a value that cannot be sent as JSON: {exc}") from exc
    await _send(send, 200, body, content_type, rid)
    return 200


async def _send(
    send: Send, status: int, body: bytes, content_type: bytes, rid: str, retry_after: int = 0
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode("latin-1")),
    ]
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(
    send: Send, status: int, content: dict[str, Any], rid: str, retry_after: int = 0
) -> int:
    await _send(send, status, codec.dumps(content), codec.JSON, rid, retry_after)
    return status


def _too_large(limit: int) -> dict[str, str]:
    return {"error": f"request body is larger than the limit of {limit} bytes"}


def create_app(runtime: Runtime) -> CortexApp:
    """Build the ASGI app; loading starts with the ASGI lifespan (uvicorn's startup)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(runtime.load())
        try:
            yield
        finally:
            task.cancel()
            runtime.close()

    api = runtime.api
    routes = FastAPI(title=api.name, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    registry = runtime.metrics.registry

    def ready_response() -> Response:
        if runtime.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": runtime.state}, status_code=503)

    @routes.get("/healthz")
    @routes.get("/v2/health/live")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @routes.get("/readyz")
    @routes.get("/v2/health/ready")
    def readyz() -> Response:
        return ready_response()

    @routes.get("/metrics")
    def metrics() -> Response:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def describe() -> dict[str, Any]:
        return {
            "name": api.name,
            "kind": api.kind,
            "status": runtime.state,
            "message": f"make a prediction by sending a POST request to {api.endpoint}",
            "endpoint": api.endpoint,
            "accepts": ["application/json", "text/plain", "multipart/form-data", "other: bytes"],
        }

    routes.add_api_route(api.endpoint, describe, methods=["GET"])
    if api.endpoint != "/predict":
        routes.add_api_route("/predict", describe, methods=["GET"])
    return CortexApp(runtime, routes)
