"""LitServe: a ``LitAPI`` doing the trivial work, one inference worker and one API server.

    python bench/peers/litserve_trivial.py PORT [--default-queues]

``fast_queue=True`` (ZeroMQ between the API server and the inference worker) is what LitServe's
docs recommend above ~100 req/s; ``--default-queues`` keeps its default multiprocessing queues.
"""

import sys

import litserve as ls

from bench.peers import initwork


class TrivialAPI(ls.LitAPI):
    def setup(self, device):
        initwork.init_work()

    def decode_request(self, request):
        return request

    def predict(self, payload):
        return {"label": "positive", "length": len(payload.get("text", ""))}

    def encode_response(self, output):
        return output


if __name__ == "__main__":
    server = ls.LitServer(
        TrivialAPI(),
        accelerator="cpu",
        devices=1,
        workers_per_device=1,
        fast_queue="--default-queues" not in sys.argv,
    )
    server.run(
        host="127.0.0.1",
        port=int(sys.argv[1]),
        num_api_servers=1,
        log_level="warning",
        generate_client_file=False,
        access_log=False,
    )
