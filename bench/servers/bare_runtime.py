"""Our runtime with admission control and metrics switched off: the baseline that the
overhead section compares the runtime's defaults against. Benchmark harness only, not a
product mode (the patched signatures follow cortex.runtime.sharedmem and metrics)."""

import sys

from cortex.runtime import master, metrics, sharedmem

sharedmem.ReplicaMemory.try_acquire = lambda self, index: True  # type: ignore[method-assign]
sharedmem.ReplicaMemory.release = lambda self, index: None  # type: ignore[method-assign]
metrics.Metrics.observe = lambda self, status, seconds: None  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(master.main())
