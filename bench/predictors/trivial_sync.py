class PythonPredictor:
    def __init__(self, config):
        pass

    def predict(self, payload):
        return {"label": "positive", "length": len(payload.get("text", ""))}
