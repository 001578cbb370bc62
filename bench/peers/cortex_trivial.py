"""Cortex's trivial predictor for the cold-start section: bench/predictors/trivial_async.py's
work after the init work of bench/peers/initwork.py."""

from bench.peers import initwork


class PythonPredictor:
    def __init__(self, config):
        initwork.init_work()

    async def predict(self, payload):
        return {"label": "positive", "length": len(payload.get("text", ""))}
