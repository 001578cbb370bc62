"""Batch sizes a peer's server formed, for the benchmark to read: one line per predict call.

The peers run their model in a process of their own (LitServe's inference worker, BentoML's
service worker) and neither exposes the sizes of the batches it forms, so the servers here
append each size to the file named by ``BENCH_BATCH_LOG``; bench/cases/batching.py reads it
before and after each load point. One short append per batch costs microseconds against a
forward pass of milliseconds.
"""

from __future__ import annotations

import os


def record(size: int) -> None:
    path = os.environ.get("BENCH_BATCH_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"{size}\n")
