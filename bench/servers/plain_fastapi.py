"""The baseline: a plain FastAPI app doing the trivial predictor's work.

uvicorn bench.servers.plain_fastapi:async_app   # `async def` route, dict body
uvicorn bench.servers.plain_fastapi:sync_app    # `def` route (FastAPI's thread pool)
uvicorn --factory bench.servers.plain_fastapi:coldstart_app   # async, after the init work
"""

from typing import Any

from fastapi import Body, FastAPI

from bench.peers import initwork

async_app = FastAPI()
sync_app = FastAPI()


@async_app.post("/predict")
async def predict_async(payload: dict[str, Any] = Body()) -> dict[str, Any]:
    return {"label": "positive", "length": len(payload.get("text", ""))}


@sync_app.post("/predict")
def predict_sync(payload: dict[str, Any] = Body()) -> dict[str, Any]:
    return {"label": "positive", "length": len(payload.get("text", ""))}


def coldstart_app() -> FastAPI:
    """The `async def` app after the cold-start section's init work (``uvicorn --factory``)."""
    initwork.init_work()
    return async_app
