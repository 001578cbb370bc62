"""Our runtime with admission control and metrics switched off: the baseline that
bench/load.py compares the full runtime against. Benchmark harness only, not a product mode."""

import sys

from cortex.runtime import master, metrics, sharedmem

sharedmem.ReplicaMemory.try_acquire = lambda self: True  # type: ignore[method-assign]
sharedmem.ReplicaMemory.release = lambda self: None  # type: ignore[method-assign]
metrics.Metrics.observe = lambda self, status, seconds: None  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(master.main())
