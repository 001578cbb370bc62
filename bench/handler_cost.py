#!/usr/bin/env python3
"""CPU cost of the prediction handler in-process (no sockets), with and without admission
control and metrics: isolates what they add per request, below the noise of a network run.

    .venv/bin/python bench/handler_cost.py
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREDICTORS = ROOT / "bench" / "predictors"
REQUESTS = 100_000


async def measure() -> float:
    from cortex.runtime import ProcessState, create_app
    from cortex.spec import load_specs

    [api] = [a for a in load_specs(PREDICTORS / "cortex.yaml") if a.name == "trivial-async"]
    runtime = ProcessState(api, PREDICTORS)
    app = create_app(runtime)
    await runtime.load()
    body = b'{"text": "the quick brown fox"}'
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"31")],
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        pass

    for _ in range(2000):
        await app(scope, receive, send)
    started = time.perf_counter()
    for _ in range(REQUESTS):
        await app(scope, receive, send)
    return (time.perf_counter() - started) / REQUESTS * 1e6


def child(bare: bool) -> None:
    if bare:
        from cortex.runtime import metrics, sharedmem

        sharedmem.ReplicaMemory.try_acquire = lambda self, index: True  # type: ignore[method-assign]
        sharedmem.ReplicaMemory.release = lambda self, index: None  # type: ignore[method-assign]
        metrics.Metrics.observe = lambda self, status, seconds: None  # type: ignore[method-assign]
    print(asyncio.run(measure()))


def main() -> None:
    if len(sys.argv) > 1:
        child(sys.argv[1] == "bare")
        return
    runs: dict[str, list[float]] = {"bare": [], "full": []}
    for _ in range(3):
        for case in ("bare", "full"):
            out = subprocess.run(
                [sys.executable, __file__, case],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            runs[case].append(float(out.stdout.split()[-1]))
    for case, values in runs.items():
        each = ", ".join(f"{v:.2f}" for v in values)
        print(f"{case}: median {sorted(values)[1]:.2f} us/request (runs: {each})")


if __name__ == "__main__":
    main()
