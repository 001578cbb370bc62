"""LitServe serving the MiniLM embedder of bench/predictors/minilm.py (same loading, same
forward pass, 1 torch thread), with LitServe's own batching or without.

    python bench/peers/batching/litserve_minilm.py PORT [--batching]

``--batching``: ``LitAPI(max_batch_size=32, batch_timeout=0.005)`` with its ``batch`` and
``unbatch`` hooks: the limits of cortex's case. POST /predict {"text": ...} -> {"embedding": [...]}.
"""

from __future__ import annotations

import argparse
from typing import Any

import litserve as ls

from bench.peers.batching import batchlog
from bench.predictors import minilm


class MiniLM(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.predictor = minilm.PythonPredictor({})

    # No annotation: LitServe types its route from it, and a dict would read as a query parameter.
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return {"text": request["text"]}

    def batch(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        batchlog.record(len(inputs))
        return list(inputs)

    def predict(self, x: Any) -> Any:
        return self.predictor.predict(x)  # a list under batching, one payload without

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def encode_response(self, output: Any) -> Any:
        return output


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--batching", action="store_true")
    args = parser.parse_args()
    api = MiniLM(max_batch_size=32, batch_timeout=0.005) if args.batching else MiniLM()
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=60)
    server.run(
        host="127.0.0.1",
        port=args.port,
        num_api_servers=1,
        log_level="warning",
        generate_client_file=False,
    )


if __name__ == "__main__":  # LitServe's worker processes import this module again
    main()
