"""A single-model API: the model is loaded in __init__ and kept in self (the baseline)."""

import json
from pathlib import Path


def load(model_path):
    """What both predictors do to load a model folder: parse its weights."""
    return json.loads((Path(model_path) / "weights.json").read_text())


def score(weights, features):
    return sum(w * x for w, x in zip(weights, features, strict=False))


class PythonPredictor:
    def __init__(self, config):
        self.model = load(config["model"])

    def predict(self, payload):
        return {"score": score(self.model, payload["features"])}
