"""Issue 15, case 5: cortex on a GPU (bench/gpu.py measures; this is its section of the run).

Skipped where torch sees no CUDA device; ``python -m bench.gpu --device cpu --smoke`` runs the
same code path on the CPU.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench import gpu, lib, sweep
from bench import report as fmt

GPU_COLUMNS = (
    ("mean batch", "mean_batch", "{:.1f}"),
    ("GPU util % (mean)", "gpu_util_mean", "{:.0f}"),
    ("GPU MiB (max)", "gpu_mem_mb", "{:.0f}"),
)


def run(settings: lib.Settings) -> dict[str, Any]:
    reason = gpu.unavailable()
    return {"skipped": reason} if reason else gpu.measure(settings)


def report(section: dict[str, Any], charts_dir: Path) -> str:
    head = "### GPU: MiniLM and a BERT-large-sized model on cortex (section `gpu`)"
    if "skipped" in section:
        return (
            f"{head}\n\nSkipped in this run: {section['skipped']}. On a GPU machine: "
            "`python -m bench.gpu` (how to set it up: the top of bench/gpu.py)."
        )
    gpu_0 = section["gpu"]
    where = (
        f"On {gpu_0['name']} ({gpu_0['memory']}, driver {gpu_0['driver']})"
        if gpu_0
        else f"On {section['device']}, with no GPU (a check of the code path, not a result)"
    )
    cases, clients = section["cases"], section["clients"]
    lines = [
        head,
        "",
        f"{where}, {'float16' if section['fp16'] else 'float32'}; the BERT model is "
        f"`BertModel(BertConfig({_kwargs(section['bert'])}))`, randomly initialised. Each server "
        "starts once per round, answers one checked request, is warmed up, then is loaded by wrk "
        f"at {', '.join(map(str, clients))} connections; batching: at most 32 requests in a "
        "5 ms window. GPU utilisation and memory: nvidia-smi every 200 ms during each point.",
        "",
        *sweep.table(cases, clients, GPU_COLUMNS),
        "",
        "No target in issue 15; what batching buys at the largest client count:",
        "",
        "| model | batched / unbatched req/s |",
        "|---|---|",
    ]
    top = str(clients[-1])
    for model in dict.fromkeys(c["model"] for c in cases.values()):
        runs = {c["batching"]: c["points"][top] for c in cases.values() if c["model"] == model}
        pairs = zip(runs[False], runs[True], strict=True)
        ratios = [{"r": b["rps"] / a["rps"] if a["rps"] else math.inf} for a, b in pairs]
        lines.append(f"| {model} | {fmt.cell(lib.spread(ratios, 'r'), '{:.2f}')}x |")
    lines += ["", *sweep.line_charts(cases, clients, charts_dir, "gpu", "GPU")]
    return "\n".join(lines)


def _kwargs(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items())
