"""Lists the prediction route in the OpenAPI document (/docs), though FastAPI never serves it.

The route is plain ASGI in front of FastAPI (see handler.py), so FastAPI cannot describe it by
itself; this adds its POST operations to the generated schema. Where the project ships a
``sample.json`` (:mod:`cortex.samples`), the JSON request body gets it as its example and a
schema drawn from it, so /docs offers a request that works; the predictor class's docstring,
once the class is loaded, describes the operation.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI

from cortex import samples
from cortex.runtime.process import ProcessState

_CONTENT_TYPES = (
    "The payload reaches predict() by its Content-Type: JSON is parsed, text/plain is a str, "
    "forms are form data, anything else is bytes."
)


def document_prediction_route(routes: FastAPI, runtime: ProcessState) -> None:
    """Make ``routes.openapi()`` include ``POST /predict`` and ``POST <endpoint>``."""
    generate = routes.openapi
    api = runtime.api
    sample = samples.read(runtime.project_dir)

    def openapi() -> dict[str, Any]:
        if routes.openapi_schema is not None:
            return routes.openapi_schema
        loaded = runtime.predictor_class
        about = inspect.getdoc(loaded.cls) if loaded is not None else None
        schema = generate()
        for index, path in enumerate(dict.fromkeys((api.endpoint, "/predict"))):
            operation = _operation(api.name, "predict" if index == 0 else f"predict_{index}")
            operation["description"] = f"{about}\n\n{_CONTENT_TYPES}" if about else _CONTENT_TYPES
            if sample is not None:
                operation["requestBody"]["content"]["application/json"] = {
                    "schema": samples.schema(sample.value),
                    "example": sample.value,
                }
            schema.setdefault("paths", {}).setdefault(path, {})["post"] = operation
        # FastAPI's generate() keeps what it made; before the class is loaded its docstring is
        # unknown, so nothing is kept until then.
        routes.openapi_schema = schema if loaded is not None else None
        return schema

    routes.openapi = openapi  # type: ignore[method-assign]


def _operation(name: str, operation_id: str) -> dict[str, Any]:
    error = {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}},
            }
        }
    }
    return {
        "summary": f"Predict with {name}",
        "operationId": operation_id,
        "requestBody": {
            "content": {
                "application/json": {"schema": {}},
                "text/plain": {"schema": {"type": "string"}},
                "multipart/form-data": {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            }
        },
        "responses": {
            "200": {"description": "predict()'s result: JSON, text, bytes or a stream"},
            "400": {"description": "the body does not match its Content-Type", "content": error},
            "413": {"description": "the body is over the size limit", "content": error},
            "500": {"description": "predict() raised", "content": error},
            "503": {
                "description": "over max_replica_concurrency, loading or draining; "
                "retry after the Retry-After header's seconds",
                "content": error,
            },
        },
    }
