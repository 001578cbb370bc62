"""Pure-Python work holding the GIL for about a millisecond: threads cannot help, processes can."""


class PythonPredictor:
    def __init__(self, config):
        self.n = config.get("n", 20000)

    def predict(self, payload):
        total = 0
        for i in range(self.n):
            total += i * i
        return {"total": total}
