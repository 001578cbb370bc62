"""KServe's Python ``ModelServer``, v1 protocol (``POST /v1/models/trivial:predict``), gRPC off.

    python bench/peers/kserve_trivial.py --http_port PORT

Latency logging off and the access log (uvicorn's, at INFO in KServe's logging config) raised
to WARNING; KSERVE_LOGLEVEL=WARNING is set by the benchmark.
"""

import logging

from kserve import Model, ModelServer

from bench.peers import initwork


class Trivial(Model):
    def __init__(self, name):
        super().__init__(name)
        self.load()

    def load(self):
        initwork.init_work()
        self.ready = True
        return self.ready

    async def predict(self, payload, headers=None, response_headers=None):
        rows = payload["instances"]
        return {"predictions": [{"label": "positive", "length": len(r["text"])} for r in rows]}


if __name__ == "__main__":
    server = ModelServer(workers=1, enable_grpc=False, enable_latency_logging=False)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    server.start([Trivial("trivial")])
