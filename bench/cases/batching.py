"""Issue 15, case 2: server-side batching of a real model, cortex vs LitServe's and BentoML's own.

all-MiniLM-L6-v2 (bench/predictors/minilm.py; the peers' servers in bench/peers/batching/ load
it and run its forward pass the same way, 1 torch thread), one sentence per request, batching
off and on with the same limits (at most 32 requests, a 5 ms window where the framework has
one), at 1, 16 and 64 concurrent clients. The mean batch size is read from cortex's
``cortex_batch_size`` histogram and from the batch log the peers' servers keep.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from bench import envs, lib, sweep
from bench import report as fmt

CLIENTS = [1, 16, 64]
TEXT = "serving a sentence embedding model on a small cpu"
SPEC = "bench/predictors/cortex.yaml"
PEERS = ("litserve", "bentoml")
MAX_BATCH = 32  # the limit of every batching case (bench/predictors/cortex.yaml, the peers)
TARGET_SPEEDUP = 3.0  # cortex batched / unbatched at 64 clients
TARGET_VS_LITSERVE = 1.0  # cortex batched / LitServe batched at 64 clients


def run(settings: lib.Settings) -> dict[str, Any]:
    frameworks = ("cortex", *(p for p in PEERS if p in settings.peers))
    with tempfile.TemporaryDirectory(prefix="bench-batches-") as logs:
        servers = [
            (f, batching, _server(f, batching, Path(logs)))
            for f in frameworks
            for batching in (0, 1)
        ]
        runs = sweep.sweep([server for _, _, server in servers], CLIENTS, settings)
    cases = {
        server.case.name: {
            "framework": framework,
            "batching": bool(batching),
            **runs[server.case.name],
            "summary": sweep.summary(runs[server.case.name]["points"]),
        }
        for framework, batching, server in servers
    }
    return {"clients": CLIENTS, "text": TEXT, "cases": cases, "answers_agree": _agree(cases)}


def _server(framework: str, batching: int, logs: Path) -> sweep.Server:
    port = lib.free_port()
    label = "adaptive batching (max 32)" if framework == "bentoml" else "batching (32, 5 ms)"
    name = f"{framework}, {label if batching else 'no batching'}"
    if framework == "cortex":
        api = "minilm-batched" if batching else "minilm"
        args = ["-m", "cortex.runtime", "--spec", SPEC, "--api", api, *_listen(port)]
        counter = sweep.cortex_batches(port) if batching else None
        return sweep.Server(
            lib.Case(name, args, port, body={"text": TEXT}), _one_embedding, counter
        )
    log = logs / f"{framework}-{port}.batches"
    env = {"BENCH_BATCH_LOG": str(log)}
    if framework == "litserve":
        args = ["bench/peers/batching/litserve_minilm.py", str(port), *["--batching"] * batching]
        case = lib.Case(name, args, port, body={"text": TEXT}, ready_path="/health")
    else:  # a batchable BentoML API takes the batch dimension from the request: a list of one
        args = ["-m", "bentoml", "serve", "bench.peers.batching.bentoml_minilm:MiniLM"]
        body = {"texts": [TEXT]} if batching else {"text": TEXT}
        case = lib.Case(name, [*args, *_listen(port)], port, body=body)
        env |= {"BENCH_BATCHING": str(batching), "BENTOML_DO_NOT_TRACK": "true"}
    case.python, case.env = str(envs.python(framework)), env
    return sweep.Server(case, _one_embedding, _logged_batches(log) if batching else None)


def _listen(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port)]


def _embedding(got: Any) -> Any:
    """The embedding in an answer (BentoML's batchable API answers a list of one)."""
    got = got[0] if isinstance(got, list) and len(got) == 1 else got
    return got.get("embedding") if isinstance(got, dict) else None


def _one_embedding(got: Any) -> bool:
    vector = _embedding(got)
    return isinstance(vector, list) and len(vector) == 8 and all(math.isfinite(v) for v in vector)


def _logged_batches(log: Path) -> sweep.Counter:
    """(batches, requests) from the batch log of a peer's server (bench/peers/batching)."""

    def read() -> tuple[float, float]:
        sizes = [int(line) for line in log.read_text().split()] if log.exists() else []
        return float(len(sizes)), float(sum(sizes))

    return read


def _agree(cases: dict[str, Any]) -> bool:
    """Whether every server answered the sentence with the same embedding (to 1e-4)."""
    vectors = [_embedding(case["answer"]) for case in cases.values()]
    return all(abs(a - b) < 1e-4 for v in vectors for a, b in zip(v, vectors[0], strict=True))


def report(section: dict[str, Any], charts_dir: Path) -> str:
    cases, clients = section["cases"], section["clients"]
    lines = [
        "### Batching: all-MiniLM-L6-v2, one sentence per request (section `batching`)",
        "",
        "Each server (1 torch thread, the same loading and forward pass) starts once per round, "
        "answers one checked request, is warmed up, then is loaded by wrk at 1, 16 and 64 "
        "connections; batching at most 32 requests, in a 5 ms window where the framework has "
        "one (BentoML adapts its own). Mean batch: requests per predict call during the point. "
        f"Every server answered the same embedding: {'yes' if section['answers_agree'] else 'NO'}.",
        "",
    ]
    extra = (("mean batch", "mean_batch", "{:.1f}"), ("CPU µs/req", "cpu_us_per_request", "{:.0f}"))
    lines += sweep.table(cases, clients, extra)
    lines += ["", "| target | value | |", "|---|---|---|"]
    for target, value, goal in targets(section):
        verdict = fmt.verdict(value["median"], goal)
        lines.append(f"| {target} | {fmt.cell(value, '{:.2f}')}x | {verdict} |")
    cpu = ", ".join(f"{f} {cell}" for f, cell in _cpu_ratios(section))
    lines += [
        "",
        "Server CPU per request at 64 clients, unbatched / batched (what batching saves, less "
        f"swayed than req/s by the share of CPU 0 the server got): {cpu}.",
        *_why_missed(section),
        "",
        *sweep.line_charts(cases, clients, charts_dir, "batching", "MiniLM"),
    ]
    return "\n".join(lines)


def _why_missed(section: dict[str, Any]) -> list[str]:
    """Why cortex's speedup target was missed, from the batch sizes it formed (none if met)."""
    found = targets(section)
    if not found or found[0][1]["median"] >= found[0][2]:
        return []
    ours = next(
        c for c in section["cases"].values() if c["framework"] == "cortex" and c["batching"]
    )
    batch = ours["summary"]["64"]["mean_batch"]["median"]
    if batch >= 0.9 * MAX_BATCH:
        cause = (
            f"its batches were full (mean {batch:.1f} of {MAX_BATCH}), so the gap is the "
            "model's own gain from batching on one core, which its CPU per request above measures"
        )
    else:
        cause = f"its batches held {batch:.1f} requests on average, not {MAX_BATCH}"
    return ["", f"Why cortex's speedup missed {found[0][2]:g}x: {cause}."]


def _cpu_ratios(section: dict[str, Any]) -> list[tuple[str, str]]:
    by = {(c["framework"], c["batching"]): c["points"]["64"] for c in section["cases"].values()}
    out = []
    for framework in dict.fromkeys(f for f, _ in by):
        pairs = zip(by[framework, False], by[framework, True], strict=True)
        ratios = [{"r": a["cpu_us_per_request"] / b["cpu_us_per_request"]} for a, b in pairs]
        out.append((framework, f"{fmt.cell(lib.spread(ratios, 'r'), '{:.2f}')}x"))
    return out


def targets(section: dict[str, Any]) -> list[tuple[str, dict[str, float], float]]:
    """(target, its ratio over rounds at 64 clients, the goal) for the targets the run can judge.

    A ratio is taken round by round (a round's cases ran back to back), then spread."""
    by = {(c["framework"], c["batching"]): c["points"]["64"] for c in section["cases"].values()}
    found = []
    pairs = [
        ("cortex batching >= 3x unbatched at 64 clients", ("cortex", False), TARGET_SPEEDUP),
        (
            "cortex batching ahead of LitServe's at 64 clients",
            ("litserve", True),
            TARGET_VS_LITSERVE,
        ),
    ]
    for target, base, goal in pairs:
        if base in by and ("cortex", True) in by:
            ours = by["cortex", True]
            ratios = [
                {"r": a["rps"] / b["rps"] if b["rps"] else math.inf}
                for a, b in zip(ours, by[base], strict=True)
            ]
            found.append((target, lib.spread(ratios, "r"), goal))
    return found
