"""The predictor's ``__init__`` for the cold-start section: a known amount of real waiting,
timed from inside the process that does it and written where the benchmark reads it.

Off unless ``BENCH_INIT_SECONDS`` is set, so the overhead section's servers start at once.
Standard library only: every peer's env imports it.
"""

import json
import os
import time

SECONDS, FILE = "BENCH_INIT_SECONDS", "BENCH_INIT_FILE"


def init_work() -> None:
    """Sleep ``$BENCH_INIT_SECONDS`` and record how long it took in ``$BENCH_INIT_FILE``."""
    seconds = float(os.environ.get(SECONDS, "0"))
    if not seconds:
        return
    started = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    with open(os.environ[FILE], "w") as f:
        json.dump({"seconds": took, "pid": os.getpid()}, f)
