"""Issue 15, case 5: cortex serving on a GPU: MiniLM and a BERT-large-sized random model,
batching off vs on, at 1, 16, 64 and 256 clients, with the GPU's name, memory and utilisation.

On a machine with an NVIDIA GPU (only its driver is needed: PyTorch's CUDA wheels carry their
CUDA libraries), in a clone with the project's venv:

    .venv/bin/pip install --force-reinstall torch==2.13.0   # PyPI's Linux wheel: the CUDA build
    .venv/bin/python -m bench.gpu --out /tmp/bench-gpu       # JSON, README, charts (~11 min, est.)

(``python -m bench`` runs the same as its ``gpu`` section wherever torch sees a CUDA device.)
Without a GPU, the same code path runs on the CPU, with a small BERT, so that it does not rot:

    .venv/bin/python -m bench.gpu --device cpu --smoke --out /tmp/bench-gpu

The predictor (bench/predictors/minilm.py) takes its device from its config; the server runs
as in the other sections (one process, one predict thread, pinned to CPU 0; wrk on CPU 1).
``nvidia-smi`` is sampled every 200 ms during each point.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import envs, lib, report, sweep

CLIENTS = [1, 16, 64, 256]
TEXT = "serving a sentence embedding model on a GPU"
BATCHING = {"max_batch_size": 32, "batch_interval": "5ms"}
BERT_LARGE = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
}
# --device cpu --smoke: BERT-large on one CPU core takes seconds a batch; the run checks the
# code path, not the numbers.
BERT_SMALL = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 512,
}


def unavailable() -> str | None:
    """Why the section cannot run here, or None."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return None


def measure(settings: lib.Settings, device: str = "cuda", fp16: bool = False) -> dict[str, Any]:
    """Every case on ``device``; the JSON part of the results file."""
    bert = BERT_SMALL if device == "cpu" and settings.smoke else BERT_LARGE
    big = "BERT-large-sized (random)" if bert is BERT_LARGE else "small BERT (random)"
    models = {"MiniLM": {}, big: {"bert": bert}}
    servers = [
        (model, batching, _server(model, {**config, "device": device, "fp16": fp16}, batching))
        for model, config in models.items()
        for batching in (False, True)
    ]
    runs = sweep.sweep([s for _, _, s in servers], CLIENTS, settings)
    cases = {
        s.case.name: {
            "model": model,
            "batching": batching,
            **runs[s.case.name],
            "summary": sweep.summary(runs[s.case.name]["points"]),
        }
        for model, batching, s in servers
    }
    facts = {"device": device, "gpu": gpu_facts() if device.startswith("cuda") else None}
    facts |= {"fp16": fp16, "bert": bert}
    return {**facts, "clients": CLIENTS, "text": TEXT, "cases": cases}


def _server(model: str, config: dict[str, Any], batching: bool) -> sweep.Server:
    port = lib.free_port()
    predictor = {"type": "python", "path": "minilm.py", "config": config}
    if batching:
        predictor["server_side_batching"] = BATCHING
    spec = {"name": "gpu", "kind": "RealtimeAPI", "predictor": predictor}
    args = ["-m", "cortex.runtime", "--spec-env", "BENCH_SPEC", "--project-dir", "bench/predictors"]
    name = f"{model}, {'batching (32, 5 ms)' if batching else 'no batching'}"
    case = lib.Case(name, [*args, "--host", "127.0.0.1", "--port", str(port)], port)
    case.body, case.env = {"text": TEXT}, {"BENCH_SPEC": json.dumps(spec)}
    counter = sweep.cortex_batches(port) if batching else None
    return sweep.Server(case, _embedding, counter, sample=nvidia_smi)


def _embedding(got: Any) -> bool:
    return isinstance(got, dict) and len(got.get("embedding", [])) == 8


@contextlib.contextmanager
def nvidia_smi() -> Iterator[dict[str, float]]:
    """GPU 0's utilisation (mean, max %) and memory used (max MiB) while the block runs,
    sampled every 200 ms; nothing where there is no nvidia-smi."""
    found: dict[str, float] = {}
    if shutil.which("nvidia-smi") is None:
        yield found
        return
    query = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
    with tempfile.TemporaryFile("w+") as out:
        cmd = ["nvidia-smi", "-i", "0", *query, "-lms", "200"]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        try:
            yield found
        finally:
            proc.terminate()
            proc.wait()
            out.seek(0)
            rows = [row for line in out if (row := _numbers(line))]
    if rows:
        util = [r[0] for r in rows]
        found |= {"gpu_util_mean": sum(util) / len(util), "gpu_util_max": max(util)}
        found |= {"gpu_mem_mb": max(r[1] for r in rows), "gpu_samples": float(len(rows))}


def _numbers(line: str) -> list[float] | None:
    """``"45, 1234"`` -> [45.0, 1234.0]; None for a line nvidia-smi could not fill ("[N/A]")."""
    try:
        return [float(x) for x in line.split(",")]
    except ValueError:
        return None


def gpu_facts() -> dict[str, str] | None:
    """Name, total memory and driver of GPU 0 (nvidia-smi), or None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = "--query-gpu=name,memory.total,driver_version"
    cmd = ["nvidia-smi", "-i", "0", query, "--format=csv,noheader"]
    line = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    name, memory, driver = (x.strip() for x in line.split(","))
    return {"name": name, "memory": memory, "driver": driver}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, or cpu to check the code path")
    parser.add_argument("--fp16", action="store_true", help="serve the models in float16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per point")
    parser.add_argument("--smoke", action="store_true", help="1 round, a second per point")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-gpu"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and (reason := unavailable()):
        parser.error(f"{reason}; --device cpu runs the code path on the CPU")
    settings = (
        lib.Settings(rounds=1, seconds=1.0, warmup=0.5, smoke=True, peers=())
        if args.smoke
        else lib.Settings(rounds=args.rounds, seconds=args.seconds, peers=())
    )
    started = time.monotonic()
    section = measure(settings, args.device, args.fp16)
    section["seconds"] = time.monotonic() - started
    results = {
        "command": shlex.join(["python", "-m", "bench.gpu", *argv]),
        "machine": lib.machine(),
        "settings": settings.as_dict(),
        "versions": {"cortex": envs.versions(sys.executable)},
        "sections": {"gpu": section},
        "seconds": section["seconds"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{time.strftime('%Y-%m-%d', time.gmtime())}-gpu.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    readme = report.write(path, readme=args.out / "README.md")
    print(f"bench.gpu: {path} and {readme} written in {section['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
