"""A multi-model API: the same models and work as one_model.py, through the model cache."""

from one_model import load, score


class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        return load(model_path)

    def predict(self, payload):
        return {"score": score(self.client.get_model(), payload["features"])}
