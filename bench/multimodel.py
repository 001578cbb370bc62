"""Multi-model APIs: what the model cache costs a request, and what a cold model costs.

    python -m bench.multimodel            # REQUESTS=2000 ROUNDS=3 COLD=5 by default

1. Latency of a request for a model in memory (``?model=m0``, a cache hit) against a plain
   single-model API running the same predictor work (the model kept in ``self``). Both
   runtimes run side by side, one thread each; requests are sequential on one keep-alive
   connection each, alternating every CHUNK requests; the servers share CPU 0, this client
   has CPU 1. A second plain runtime (``control``, sent the same query string as the cached
   one) shows what two identical servers differ by on this machine. Target: within 5 % (median over
   rounds of the ratio of the p50s).
2. Time to first response for a cold model against the model's own load time (the same
   ``load`` function timed in this process, and the runtime's ``cortex_model_load_seconds``).

Models are JSON weight vectors (WEIGHTS floats, a few MB) built in a temporary folder.
Results go to bench/results/multimodel.json and stdout.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
PREDICTORS = Path(__file__).resolve().parent / "predictors"
REQUESTS = int(os.environ.get("REQUESTS", "2000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
COLD = int(os.environ.get("COLD", "5"))
WEIGHTS = int(os.environ.get("WEIGHTS", "200000"))
FEATURES = 64
CHUNK = 50
SERVER_CPU, CLIENT_CPU = 0, 1
PINNED = len(os.sched_getaffinity(0)) > 1
SERVERS = {"plain": "one-model", "control": "one-model", "cached": "many-models"}
READY_TIMEOUT_S = 120


def build_models(root: Path, count: int) -> None:
    rng = random.Random(0)
    for i in range(count):
        folder = root / f"m{i}" / "1"
        folder.mkdir(parents=True)
        weights = [round(rng.uniform(-1, 1), 6) for _ in range(WEIGHTS)]
        (folder / "weights.json").write_text(json.dumps(weights))


def write_spec(workdir: Path, models: Path) -> Path:
    for name in ("one_model.py", "many_models.py"):
        (workdir / name).write_text((PREDICTORS / name).read_text())
    one = {"type": "python", "path": "one_model.py", "config": {"model": str(models / "m0" / "1")}}
    many = {
        "type": "python",
        "path": "many_models.py",
        "models": {"dir": str(models), "cache_size": 3, "poll_interval": 0},
    }
    spec = [
        {"name": "one-model", "kind": "RealtimeAPI", "predictor": one},
        {"name": "many-models", "kind": "RealtimeAPI", "predictor": many},
    ]
    path = workdir / "cortex.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def start(spec: Path, api: str, tag: str) -> tuple[subprocess.Popen[bytes], str]:
    status = spec.parent / f"{tag}.status.json"
    cmd = [sys.executable, "-m", "cortex.runtime", "--spec", str(spec), "--api", api]
    cmd += ["--port", "0", "--host", "127.0.0.1", "--status-file", str(status)]
    log = (spec.parent / f"{tag}.log").open("wb")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_on_server_cpu
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{tag} exited: {(spec.parent / f'{tag}.log').read_text()}")
        try:
            record = json.loads(status.read_text())
        except (OSError, ValueError):
            record = {}
        if record.get("state") == "ready":
            return proc, f"http://127.0.0.1:{record['port']}"
        time.sleep(0.05)
    raise SystemExit(f"{api} not ready within {READY_TIMEOUT_S} s")


def _on_server_cpu() -> None:
    """In the server's process before it runs: its workers inherit the CPU from it."""
    if PINNED:
        os.sched_setaffinity(0, {SERVER_CPU})


def latencies(client: httpx.Client, url: str, count: int) -> list[float]:
    body = {"features": [0.5] * FEATURES}
    seen = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.post(url, json=body)
        seen.append(time.perf_counter() - started)
        response.raise_for_status()
    return seen


def load_seconds_sum(client: httpx.Client, base: str) -> float:
    for line in client.get(f"{base}/metrics").text.splitlines():
        if line.startswith("cortex_model_load_seconds_sum"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def own_load_seconds(models: Path) -> float:
    """The predictor's ``load`` timed here, on the servers' CPU (where the runtime loads)."""
    sys.path.insert(0, str(PREDICTORS))
    from one_model import load

    if PINNED:
        os.sched_setaffinity(0, {SERVER_CPU})
    runs = []
    for i in range(1, COLD + 1):
        started = time.perf_counter()
        load(models / f"m{i}" / "1")
        runs.append(time.perf_counter() - started)
    if PINNED:
        os.sched_setaffinity(0, {CLIENT_CPU})
    return statistics.median(runs)


def cold(client: httpx.Client, base: str) -> list[dict[str, float]]:
    body = {"features": [0.5] * FEATURES}
    results = []
    for i in range(1, COLD + 1):
        before = load_seconds_sum(client, base)
        started = time.perf_counter()
        client.post(f"{base}/predict", params={"model": f"m{i}"}, json=body).raise_for_status()
        first = time.perf_counter() - started
        results.append(
            {"first_response_s": first, "load_s": load_seconds_sum(client, base) - before}
        )
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def main() -> None:
    if PINNED:
        os.sched_setaffinity(0, {CLIENT_CPU})
    with tempfile.TemporaryDirectory(prefix="bench-multimodel-") as tmp:
        workdir = Path(tmp)
        models = workdir / "models"
        build_models(models, COLD + 1)
        spec = write_spec(workdir, models)
        procs = []
        try:
            bases = {}
            for tag, api in SERVERS.items():
                proc, bases[tag] = start(spec, api, tag)
                procs.append(proc)
            with httpx.Client(timeout=60, trust_env=False) as client:
                result = measure(client, bases, models)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    out = ROOT / "bench" / "results" / "multimodel.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)


def measure(client: httpx.Client, bases: dict[str, str], models: Path) -> dict[str, Any]:
    urls = {tag: f"{base}/predict" for tag, base in bases.items()}
    urls["cached"] += "?model=m0"
    urls["control"] += "?model=m0"
    client.post(urls["cached"], json={"features": [0.0]})  # m0 in memory
    for url in urls.values():
        latencies(client, url, 200)  # warm the connections and code paths
    rounds = []
    for _ in range(ROUNDS):
        seen: dict[str, list[float]] = {tag: [] for tag in urls}
        for _ in range(REQUESTS // CHUNK):  # alternate often: the machine's load drifts
            for tag, url in urls.items():
                seen[tag] += latencies(client, url, CHUNK)
        rounds.append({f"{tag}_p50_s": statistics.median(values) for tag, values in seen.items()})
    return {
        "settings": {"requests": REQUESTS, "rounds": ROUNDS, "cold": COLD, "weights": WEIGHTS},
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "rounds": rounds,
        "cached_vs_plain_p50_ratio": _ratio(rounds, "cached"),
        "control_vs_plain_p50_ratio": _ratio(rounds, "control"),
        "cold": cold(client, bases["cached"]),
        "own_load_s": own_load_seconds(models),
    }


def _ratio(rounds: list[dict[str, float]], tag: str) -> float:
    return statistics.median(r[f"{tag}_p50_s"] / r["plain_p50_s"] for r in rounds)


def report(result: dict[str, Any]) -> None:
    print(f"settings: {result['settings']}, machine: {result['machine']}")
    for i, r in enumerate(result["rounds"], 1):
        print(
            f"round {i}: p50 plain {ms(r['plain_p50_s'])}, control (a second plain runtime) "
            f"{ms(r['control_p50_s'])}, cached model {ms(r['cached_p50_s'])}"
        )
    ratio = result["cached_vs_plain_p50_ratio"]
    verdict = "within" if ratio <= 1.05 else "over"
    print(
        f"cached / plain p50 (median of rounds): {ratio:.3f} ({verdict} the 5 % target); "
        f"control / plain: {result['control_vs_plain_p50_ratio']:.3f} (the noise)"
    )
    own, colds = result["own_load_s"], result["cold"]
    for c in colds:
        print(
            f"cold model: first response {ms(c['first_response_s'])}, runtime's load "
            f"{ms(c['load_s'])}"
        )
    first = statistics.median(c["first_response_s"] for c in colds)
    loaded = statistics.median(c["load_s"] for c in colds)
    print(
        f"cold model, medians: first response {ms(first)}, runtime's load {ms(loaded)}, "
        f"the model's own load (timed here, on the servers' CPU) {ms(own)}"
    )


if __name__ == "__main__":
    main()
