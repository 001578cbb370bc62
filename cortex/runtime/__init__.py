"""The serving runtime: one replica of one API, ``python -m cortex.runtime``.

Its modules form one column; each imports only from the rows below it (import-linter checks
it, see pyproject.toml)::

    __main__                      the command
    master                        the replica's master process: binds, forks, reloads, drains
    worker | hold                 one worker process: uvicorn on the shared socket | the port
                                  held while the workers sleep (min_replicas 0)
    app | connections             the app factory: routes, X-Request-ID, 404/405 | HTTP limits
    auth | docs | handler | openapi
                                  bearer tokens | /docs offline | the prediction route |
                                  its OpenAPI description
    process | streaming | responses
                                  one process's state | streamed answers | small JSON answers
    calls                         how kwargs reach predict: direct, thread or batch
    batching | threads | predictor | metrics
                                  batches | thread pool | user contract and loading | Prometheus
    sharedmem | codec | logs | limits | deadlines | children
                                  replica memory | bodies | JSON logs | per-request limits |
                                  a request's deadlines | child processes: their end
"""

from __future__ import annotations

from cortex.runtime.app import CortexApp, create_app
from cortex.runtime.batching import BatchSizeError
from cortex.runtime.limits import Limits
from cortex.runtime.master import main
from cortex.runtime.predictor import Predictor
from cortex.runtime.process import ProcessState

__all__ = [
    "BatchSizeError",
    "CortexApp",
    "Limits",
    "Predictor",
    "ProcessState",
    "create_app",
    "main",
]
