"""Serves every model of a folder (predictor.models.dir): ?model=NAME picks one, &version=N a
version other than the latest. A model is a linear classifier stored as model.json."""

import json
import math
from pathlib import Path

from starlette.responses import JSONResponse


class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        """Runs when a request needs a model that is not in memory."""
        model = json.loads((Path(model_path) / "model.json").read_text())
        model["version"] = int(Path(model_path).name)
        return model

    def model_size(self, model, path):
        """What the model takes in memory, roughly: counted against models.max_bytes."""
        return 64 * sum(len(row) + 1 for row in model["weights"])

    def predict(self, payload):
        """Send {"features": [numbers]}; answers the label, its probability and the model."""
        model = self.client.get_model()
        features = payload.get("features") if isinstance(payload, dict) else None
        width = len(model["weights"][0])
        if not isinstance(features, list) or len(features) != width:
            return JSONResponse({"error": f'send {{"features": [{width} numbers]}}'}, 400)
        scores = [
            sum(w * x for w, x in zip(row, features, strict=True)) + bias
            for row, bias in zip(model["weights"], model["bias"], strict=True)
        ]
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        best = exps.index(max(exps))
        probability = round(exps[best] / sum(exps), 4)
        return {
            "label": model["labels"][best],
            "probability": probability,
            "version": model["version"],
        }
