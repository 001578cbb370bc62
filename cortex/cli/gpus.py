"""Whether this machine has an NVIDIA GPU, for the local environment's warning.

Detected without importing torch (seconds, and not installed with every predictor): an
``nvidia-smi`` on PATH or an NVIDIA device node. ``CUDA_VISIBLE_DEVICES`` set empty (or ``-1``)
hides every GPU from CUDA, so it counts as none, as it will for the predictor.
"""

from __future__ import annotations

import glob
import shutil
from collections.abc import Mapping, Sequence

from cortex.spec import RealtimeAPI

__all__ = ["missing_gpu_warnings", "visible"]


def visible(env: Mapping[str, str]) -> bool:
    """Whether a process started with ``env`` can use a GPU."""
    if env.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return False
    return shutil.which("nvidia-smi", path=env.get("PATH")) is not None or bool(
        glob.glob("/dev/nvidia[0-9]*")
    )


def missing_gpu_warnings(apis: Sequence[RealtimeAPI], env: Mapping[str, str]) -> list[str]:
    """One line per API asking for GPUs that this machine cannot give it."""
    wanting = [api for api in apis if api.compute.gpu > 0]
    if not wanting or visible(env):
        return []
    return [
        f"api '{api.name}' asks for compute.gpu {api.compute.gpu} but this machine has no GPU "
        "(no nvidia-smi, no /dev/nvidia*, or CUDA_VISIBLE_DEVICES hides them); it runs on "
        "the CPU here"
        for api in wanting
    ]
