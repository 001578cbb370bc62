"""A fixed 10 ms service time that releases the GIL (like waiting on a GPU or another service)."""

import time


class PythonPredictor:
    def __init__(self, config):
        self.seconds = config.get("seconds", 0.01)

    def predict(self, payload):
        time.sleep(self.seconds)
        return {"ok": True}
