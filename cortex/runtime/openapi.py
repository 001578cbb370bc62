"""Lists the prediction route in the OpenAPI document (/docs), though FastAPI never serves it.

The route is plain ASGI in front of FastAPI (see handler.py), so FastAPI cannot describe it by
itself; this adds its POST operations to the generated schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from cortex.spec import RealtimeAPI


def document_prediction_route(routes: FastAPI, api: RealtimeAPI) -> None:
    """Make ``routes.openapi()`` include ``POST /predict`` and ``POST <endpoint>``."""
    generate = routes.openapi

    def openapi() -> dict[str, Any]:
        if routes.openapi_schema is None:
            schema = generate()
            for index, path in enumerate(dict.fromkeys((api.endpoint, "/predict"))):
                operation = _operation(api, "predict" if index == 0 else f"predict_{index}")
                schema.setdefault("paths", {}).setdefault(path, {})["post"] = operation
            routes.openapi_schema = schema
        return routes.openapi_schema

    routes.openapi = openapi  # type: ignore[method-assign]


def _operation(api: RealtimeAPI, operation_id: str) -> dict[str, Any]:
    error = {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}},
            }
        }
    }
    return {
        "summary": f"Predict with {api.name}",
        "description": "The payload reaches predict() by its Content-Type: JSON is parsed, "
        "text/plain is a str, forms are form data, anything else is bytes.",
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
