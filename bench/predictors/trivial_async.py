class PythonPredictor:
    def __init__(self, config):
        pass

    async def predict(self, payload):
        return {"label": "positive", "length": len(payload.get("text", ""))}
