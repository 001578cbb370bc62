"""The app factory: one worker process's ASGI app around a loaded (or loading) predictor.

``POST /predict`` and ``POST <endpoint>`` go to the plain ASGI ``PredictHandler``; every other
route (description, health, readiness, metrics, /docs) is an ordinary FastAPI route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cortex.errors import PredictorError
from cortex.runtime import shared as states
from cortex.runtime.batching import Batcher
from cortex.runtime.handler import PredictHandler
from cortex.runtime.metrics import WIDTH, Metrics
from cortex.runtime.openapi import document_prediction_route
from cortex.runtime.predictor import PredictorClass, load_predictor_class
from cortex.runtime.shared import Shared
from cortex.runtime.workers import ThreadWorkers
from cortex.spec import RealtimeAPI, spec_hash

log = logging.getLogger("cortex.runtime")

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class Settings:
    """Runtime knobs that are not part of the API spec."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retry_after_seconds: int = 1


class Runtime:
    """One worker process: the predictor, its readiness, workers, batching and metrics."""

    def __init__(
        self,
        api: RealtimeAPI,
        project_dir: Path,
        *,
        shared: Shared | None = None,
        slot: int = 0,
        settings: Settings | None = None,
    ) -> None:
        self.api = api
        self.project_dir = project_dir
        self.settings = settings or Settings()
        self._owns_shared = shared is None  # alone (tests, tools): no master to mark readiness
        self.shared = shared or Shared(api.autoscaling.max_replica_concurrency, WIDTH, slots=1)
        self.slot = slot
        self.metrics = Metrics(api.name, self.shared, slot)
        self.state = "loading"
        self.draining = False  # readiness 503, responses close their connection
        self.refusing = False  # after the drain grace window: new requests get 503
        self.active = 0  # requests inside the predict handler of this process
        self.failure: BaseException | None = None
        self.predictor: Any = None
        self.spec: PredictorClass | None = None
        self.workers = ThreadWorkers(api.predictor.threads_per_process)
        self.call: Callable[[dict[str, Any]], Awaitable[Any]] = self._call_unloaded
        self.on_failure: Callable[[], None] = lambda: None
        self.spec_hash = spec_hash(api)

    @property
    def serving(self) -> bool:
        return self.state == "ready" and not self.refusing

    def ready(self) -> bool:
        """Readiness of the replica as seen from this process."""
        return self.serving and not self.draining and self.shared.state == states.READY

    def status(self) -> str:
        if self.draining or self.refusing:
            return "draining"
        if self.state == "ready" and self.shared.state != states.READY:
            return states.STATE_NAMES[self.shared.state]
        return self.state

    async def load(self) -> None:
        """Import the predictor class and run ``__init__(config)`` on a worker thread.

        Importing the user's module (torch, transformers...) and ``__init__`` run off the
        event loop, which keeps answering /healthz and /readyz meanwhile. Failures are logged
        with their traceback and kept in ``self.failure``; ``on_failure`` tells the owner.
        """
        self.shared.set_worker_state(self.slot, states.LOADING)
        started = time.perf_counter()
        try:
            self.spec = await self.workers.run(self._load_class)
            with_lock = self.api.predictor.processes_per_replica > 1  # staggered __init__s
            self.predictor = await self.workers.run(self._instantiate, locked=with_lock)
            self.call = self._make_call()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.state, self.failure = "failed", exc
            if isinstance(exc, PredictorError):
                message = f"predictor cannot be loaded: {exc}"
                log.error("%s", message)
            else:
                message = f"predictor __init__ raised {type(exc).__name__}: {exc}"
                log.error("%s", message, exc_info=exc)
            self.shared.set_error(message)
            self.shared.set_worker_state(self.slot, states.FAILED)
            self.on_failure()
            return
        seconds = time.perf_counter() - started
        self.metrics.set_load_seconds(seconds)
        self.state = "ready"
        self.shared.set_worker_state(self.slot, states.READY)
        if self._owns_shared:
            self.shared.state = states.READY
        log.info("predictor loaded in %.2fs", seconds)

    def _load_class(self) -> PredictorClass:
        predictor = self.api.predictor
        python_path = self.project_dir / predictor.python_path if predictor.python_path else None
        return load_predictor_class(self.project_dir / predictor.path, python_path=python_path)

    def _instantiate(self, locked: bool) -> Any:
        assert self.spec is not None
        config = dict(self.api.predictor.config)
        if not locked:
            return self.spec.instantiate(config)
        with self.shared.init_lock:
            return self.spec.instantiate(config)

    def _make_call(self) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        """How a request's kwargs reach ``predict``: directly, on a thread, or in a batch."""
        assert self.spec is not None
        predict = self.predictor.predict
        workers, metrics = self.workers, self.metrics
        batching = self.api.predictor.server_side_batching
        # A call's wait for a thread is its queue wait, unless the batcher measures it instead.
        workers.on_wait = metrics.observe_wait if batching is None else lambda seconds: None
        call: Callable[[dict[str, Any]], Awaitable[Any]]
        if self.spec.is_async_gen:

            async def call(kwargs: dict[str, Any]) -> Any:
                return predict(**kwargs)  # an async generator: the handler streams it

        elif self.spec.is_async:

            async def call(kwargs: dict[str, Any]) -> Any:
                return await predict(**kwargs)

        else:

            def call(kwargs: dict[str, Any]) -> Awaitable[Any]:
                return workers.run(predict, **kwargs)

        if batching is None:
            return call
        if self.spec.is_gen or self.spec.is_async_gen:
            raise PredictorError(
                f"{self.spec.file.name}: predict is a generator (streaming), which cannot be "
                "combined with server_side_batching; remove one of them"
            )

        def on_batch(size: int, waits: list[float]) -> None:
            metrics.observe_batch(size)
            for wait in waits:
                metrics.observe_wait(wait)

        batcher = Batcher(call, batching.max_batch_size, batching.batch_interval, on_batch)
        return batcher.submit

    async def _call_unloaded(self, kwargs: dict[str, Any]) -> Any:
        raise RuntimeError("the predictor is not loaded")

    def close(self) -> None:
        self.workers.close()


class CortexApp:
    """ASGI entry point: predictions go to ``PredictHandler``, everything else to FastAPI."""

    def __init__(self, runtime: Runtime, routes: FastAPI) -> None:
        self.runtime = runtime
        self.routes = routes
        self.predict = PredictHandler(runtime)
        self.predict_paths = frozenset({"/predict", runtime.api.endpoint})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.predict_paths
        ):
            await self.predict(scope, receive, send)
        else:
            await self.routes(scope, receive, send)


def create_app(runtime: Runtime, *, load_before_serving: bool = False) -> CortexApp:
    """Build the ASGI app; loading starts with the ASGI lifespan (uvicorn's startup).

    ``load_before_serving`` holds the startup until the predictor is loaded, so a process that
    joins a replica already serving (a reload, a restarted worker) takes no request before.
    """

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
    routes = FastAPI(title=api.name, lifespan=lifespan, docs_url="/docs", redoc_url=None)

    def readiness() -> Response:
        body = {
            "status": runtime.status() if not runtime.ready() else "ready",
            "api": api.name,
            "spec_hash": runtime.spec_hash,
        }
        return JSONResponse(body, status_code=200 if runtime.ready() else 503)

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

    def describe() -> dict[str, Any]:
        return {
            "name": api.name,
            "kind": api.kind,
            "status": runtime.status(),
            "message": f"make a prediction by sending a POST request to {api.endpoint}",
            "endpoint": api.endpoint,
            "accepts": ["application/json", "text/plain", "multipart/form-data", "other: bytes"],
        }

    routes.add_api_route(api.endpoint, describe, methods=["GET"])
    if api.endpoint != "/predict":
        routes.add_api_route("/predict", describe, methods=["GET"])
    document_prediction_route(routes, api)
    return CortexApp(runtime, routes)
