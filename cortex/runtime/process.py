"""One worker process's state: its predictor (loading, loaded or failed), readiness, thread pool,
metrics and the call that reaches ``predict``. The ASGI app and the uvicorn worker read it;
nothing here speaks HTTP.

Readiness is also lost, without any process failing, when the replica cannot serve: every
predict thread of every worker is stuck in a call whose request timed out, or the replica is at
its concurrency cap and nothing was admitted or finished for ``networking.timeout`` (requests
that time out free their slots, so only slots that never come back get there). Either clears by
itself when the calls return.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cortex.contracts import RuntimeState
from cortex.errors import PredictorError
from cortex.runtime import (
    calls,
    logs,
    metrics,
    modelclient,
    modelmetrics,
    predictor,
    sharedmem,
    threads,
)
from cortex.runtime.limits import Limits
from cortex.spec import RealtimeAPI, format_duration, spec_hash

log = logging.getLogger("cortex.runtime")

SharedState = sharedmem.SharedState


class ProcessState:
    """One worker process: the predictor, its readiness, thread pool, batching and metrics."""

    def __init__(
        self,
        api: RealtimeAPI,
        project_dir: Path,
        *,
        shared: sharedmem.ReplicaMemory | None = None,
        slot: int = 0,
        limits: Limits | None = None,
    ) -> None:
        self.api = api
        self.project_dir = project_dir
        self.limits = limits or Limits()
        self._owns_shared = shared is None  # alone (tests, tools): no master to mark readiness
        self.shared = shared or sharedmem.ReplicaMemory(
            api.autoscaling.max_replica_concurrency, metrics.WIDTH, slots=1
        )
        self.slot = slot
        self.metrics = metrics.Metrics(api.name, self.shared, slot)
        self.state = RuntimeState.LOADING
        self.draining = False  # readiness 503, responses close their connection
        self.refusing = False  # after the drain grace window: new requests get 503
        self.active = 0  # requests inside the predict handler of this process
        self.failure: BaseException | None = None
        self.predictor: predictor.Predictor | None = None
        self.predictor_class: predictor.PredictorClass | None = None
        self.timeout = api.networking.timeout
        self.pool = threads.ThreadPool(
            api.predictor.threads_per_process,
            on_abandoned=lambda count: self.shared.set_abandoned(self.slot, count),
        )
        self.call: calls.Call = calls.unloaded
        self.on_failure: Callable[[], None] = lambda: None
        self.spec_hash = spec_hash(api)
        self.models: modelclient.ModelClient | None = None  # a multi-model API's client
        self.model_cache_dir = Path(tempfile.gettempdir()) / "cortex-models" / api.name

    @property
    def serving(self) -> bool:
        return self.state == RuntimeState.READY and not self.refusing

    def ready(self) -> bool:
        """Readiness of the replica as seen from this process."""
        return self.unready_reason() is None

    def unready_reason(self) -> str | None:
        """Why the replica should take no traffic now, or None when it should."""
        if not (self.serving and not self.draining and self.shared.state == SharedState.READY):
            return f"api is {self.status()}"
        threads = self.api.predictor.threads_per_process
        if self.shared.all_threads_stuck(threads):
            return (
                f"every predict thread ({threads} per process) is stuck in a call that "
                "outlived networking.timeout"
            )
        if self.shared.stalled(self.timeout):
            return (
                f"{self.shared.in_flight()} requests in flight (max_replica_concurrency) and "
                f"none admitted or finished for networking.timeout "
                f"({format_duration(self.timeout)})"
            )
        return None

    def status(self) -> RuntimeState:
        if self.draining or self.refusing:
            return RuntimeState.DRAINING
        replica = self.shared.state
        if self.state == RuntimeState.READY and replica != SharedState.READY:
            # GONE is a slot's state, never the replica's.
            return RuntimeState[replica.name] if replica != SharedState.GONE else self.state
        return self.state

    async def load(self) -> None:
        """Import the predictor class and run ``__init__(config)`` on a pool thread.

        Importing the user's module (torch, transformers...) and ``__init__`` run off the
        event loop, which keeps answering /healthz and /readyz meanwhile. Failures are logged
        with their traceback and kept in ``self.failure``; ``on_failure`` tells the owner.
        """
        self.shared.set_worker_state(self.slot, SharedState.LOADING)
        started = time.perf_counter()
        try:
            self.predictor_class = await self.pool.run(self._load_class)
            logs.adopt_console_handlers()
            if self.api.predictor.models is not None:
                self.models = await self.pool.run(self._model_client, loaded=self.predictor_class)
            with_lock = self.api.predictor.processes_per_replica > 1  # staggered __init__s
            self.predictor = await self.pool.run(self._instantiate, locked=with_lock)
            logs.adopt_console_handlers()
            self.call = calls.make_call(
                self.predictor_class,
                self.predictor,
                self.pool,
                self.metrics,
                self.api.predictor.server_side_batching,
            )
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failed(exc)
            return
        seconds = time.perf_counter() - started
        # The predictor and its model live as long as the process: the collector need not walk
        # them again and again (a full collection over a large heap is a latency spike).
        gc.collect()
        gc.freeze()
        if self.models is not None:
            self.models.start()
        self.metrics.set_load_seconds(seconds)
        self.state = RuntimeState.READY
        self.shared.set_worker_state(self.slot, SharedState.READY)
        if self._owns_shared:
            self.shared.state = SharedState.READY
        log.info("predictor loaded in %.2fs", seconds)

    def _failed(self, exc: BaseException) -> None:
        self.state, self.failure = RuntimeState.FAILED, exc
        if isinstance(exc, PredictorError):
            cause = f"predictor cannot be loaded: {exc}"
            log.error("%s", cause)
        else:
            cause = f"predictor __init__ raised {type(exc).__name__}: {exc}"
            log.error("%s", cause, exc_info=exc)
        self.shared.set_cause(cause)
        self.shared.set_worker_state(self.slot, SharedState.FAILED)
        self.on_failure()

    def _load_class(self) -> predictor.PredictorClass:
        spec = self.api.predictor
        python_path = self.project_dir / spec.python_path if spec.python_path else None
        return predictor.load_predictor_class(self.project_dir / spec.path, python_path=python_path)

    def _model_client(self, loaded: predictor.PredictorClass) -> modelclient.ModelClient:
        """The multi-model predictor's client, its models listed (once) before ``__init__``."""
        models = self.api.predictor.models
        assert models is not None  # load() asks only then
        where = f"{loaded.file.name}: {loaded.cls.__name__}"
        if "python_client" not in loaded.init_args:
            raise PredictorError(
                f"{where}.__init__ must take python_client (def __init__(self, config, "
                "python_client)) to get the models of predictor.models"
            )
        if "load_model" not in loaded.model_hooks:
            raise PredictorError(
                f"{where} must define load_model(self, model_path), which loads one model "
                "from its folder, to serve predictor.models"
            )
        loaded.check_model_hooks()
        counts = modelmetrics.ModelMetrics(self.api.name, models.label_models)
        client = modelclient.ModelClient(models, self.project_dir, self.model_cache_dir, counts)
        counts.usage = client.usage
        client.unload_later = self.pool.submit
        self.metrics.registry.register(counts)
        return client

    def _instantiate(self, locked: bool) -> predictor.Predictor:
        assert self.predictor_class is not None  # set by load() just before
        loaded, config = self.predictor_class, dict(self.api.predictor.config)
        if self.models is None and "python_client" in loaded.init_args:
            raise PredictorError(
                f"{loaded.file.name}: {loaded.cls.__name__}.__init__ takes python_client, "
                "which needs predictor.models in the spec (docs/multi-model.md)"
            )
        client, bind = self.models, self.models.bind if self.models is not None else None
        if not locked:
            return loaded.instantiate(config, client, bind)
        with self.shared.init_lock:
            return loaded.instantiate(config, client, bind)

    def close(self) -> None:
        if self.models is not None:
            self.models.close()
        self.pool.close()
