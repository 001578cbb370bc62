"""The baseline: a plain FastAPI app doing the trivial predictor's work.

uvicorn bench.servers.plain_fastapi:async_app   # `async def` route, dict body
uvicorn bench.servers.plain_fastapi:sync_app    # `def` route (FastAPI's thread pool)
"""

from typing import Any

from fastapi import Body, FastAPI

async_app = FastAPI()
sync_app = FastAPI()


@async_app.post("/predict")
async def predict_async(payload: dict[str, Any] = Body()) -> dict[str, Any]:
    return {"label": "positive", "length": len(payload.get("text", ""))}


@sync_app.post("/predict")
def predict_sync(payload: dict[str, Any] = Body()) -> dict[str, Any]:
    return {"label": "positive", "length": len(payload.get("text", ""))}
