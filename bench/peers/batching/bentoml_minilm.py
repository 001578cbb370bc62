"""BentoML serving the MiniLM embedder of bench/predictors/minilm.py (same loading, same
forward pass, 1 torch thread), with BentoML's adaptive batching or without.

    BENCH_BATCHING=1 python -m bentoml serve bench.peers.batching.bentoml_minilm:MiniLM --port P

Without batching: POST /predict {"text": ...} -> {"embedding": [...]}. With it (the decorator's
arguments are fixed when the class is defined, hence the variable): ``batchable=True,
max_batch_size=32``; a batchable API takes its batch dimension from the request, so one sentence
is ``{"texts": [...]}`` -> ``[{"embedding": [...]}]``. BentoML has no fixed batch window: its
dispatcher sends a batch whenever the model is free, and refuses (503) a request whose
predicted latency exceeds ``max_latency_ms``; that is set to 30 s, the other servers' request
timeout, so that it never refuses where they would not.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml

from bench.peers.batching import batchlog
from bench.predictors import minilm

BATCHING = os.environ.get("BENCH_BATCHING") == "1"


@bentoml.service(workers=1, threads=1, traffic={"timeout": 60})
class MiniLM:
    def __init__(self) -> None:
        self.predictor = minilm.PythonPredictor({})

    if BATCHING:

        @bentoml.api(route="/predict", batchable=True, max_batch_size=32, max_latency_ms=30_000)
        def predict(self, texts: list[str]) -> list[dict[str, Any]]:
            batchlog.record(len(texts))
            result: list[dict[str, Any]] = self.predictor.predict([{"text": t} for t in texts])
            return result

    else:

        @bentoml.api(route="/predict")
        def predict(self, text: str) -> dict[str, Any]:
            result: dict[str, Any] = self.predictor.predict({"text": text})
            return result
