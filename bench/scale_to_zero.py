"""Scale to zero (issue 17): the cold start's own overhead, and the activator's hop.

    python -m bench.scale_to_zero [--rounds 5] [--hop-rounds 3] [--seconds 10] [--connections 32]

1. Cold start, locally: a runtime with ``min_replicas: 0`` asleep (its master holds the port);
   the time from the first request to its 200, minus the time its workers took to become ready
   (the master logs it: "woken in ..."). What is left is ours: noticing the request, forking,
   relaying it. Target <= 0.5 s.
2. Cold start, on the fake cluster (tests/fakeapi): an API at zero behind a real activator; the
   bench plays the kubelet: once the activator's scale write made a pod, it starts a runtime
   for it and, once that answers /readyz, marks the pod ready. Overhead = request to 200 minus
   the runtime's own start (spawn to /readyz 200). Included in the overhead: the scale write,
   the fake's controllers and EndpointSlice, the bench's 10 ms polls, the activator's release.
3. The hop: a warm API behind the activator vs the same runtime straight, wrk POSTs (server
   processes pinned to CPU 0, wrk to CPU 1 when the machine has 2 CPUs or more): req/s ratio
   and p50 ratio, and the server side's CPU per request (runtime, plus the activator).

Numbers from a loaded machine are noise beyond their order of magnitude; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lib import cpu_seconds  # noqa: E402
from tests.activator.harness import (  # noqa: E402 - the repository's own test harness
    NAME,
    PATH,
    Activator,
    api_at_zero,
    bind,
    replicas,
)
from tests.fakeapi import FakeCluster  # noqa: E402
from tests.runtime.harness import terminate  # noqa: E402

PREDICTOR = ROOT / "bench" / "predictors" / "trivial_async.py"
BODY = {"text": "a warm request"}
PIN = (os.cpu_count() or 1) >= 2
_LUA = (
    'wrk.method = "POST"\nwrk.body = [==[%s]==]\nwrk.headers["Content-Type"] = "application/json"\n'
)


def pinned(cmd: list[str], cpu: str) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if PIN else cmd


def until(check: Callable[[], Any], within: float = 60.0, every: float = 0.01) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError("the bench waited too long")


def write_project(folder: Path, **autoscaling: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictor.py").write_text(PREDICTOR.read_text())
    spec = {
        "name": NAME,
        "kind": "RealtimeAPI",
        "predictor": {"type": "python", "path": "predictor.py"},
        "autoscaling": autoscaling,
    }
    (folder / "cortex.yaml").write_text(yaml.safe_dump([spec]))
    return folder / "cortex.yaml"


@contextmanager
def process(cmd: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    try:
        yield proc
    finally:
        terminate(proc)


def runtime_cmd(spec: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cortex.runtime", "--spec", str(spec), "--any-path", *args]


def status(path: Path) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found


# -- 1. locally -----------------------------------------------------------------------------------


def local_cold_starts(folder: Path, rounds: int) -> list[dict[str, float]]:
    spec = write_project(folder, min_replicas=0, scale_to_zero_after="1s")
    state = folder / "status.json"
    log = folder / "runtime.log"
    cmd = runtime_cmd(spec, "--host", "127.0.0.1", "--port", "0", "--status-file", str(state))
    samples = []
    with process(pinned(cmd, "0"), log), httpx.Client(timeout=120) as client:
        port = until(lambda: status(state).get("port"))
        for _ in range(rounds):
            until(lambda: status(state).get("state") == "asleep")
            before = log.read_text().count("woken in")
            start = time.perf_counter()
            answer = client.post(f"http://127.0.0.1:{port}{PATH}", json=BODY)
            total = time.perf_counter() - start
            answer.raise_for_status()
            woken = until(lambda b=before: _nth_woken(log, b))
            samples.append({"total_s": total, "runtime_s": woken, "overhead_s": total - woken})
    return samples


def _nth_woken(log: Path, before: int) -> float | None:
    found = re.findall(r"woken in ([\d.]+)s", log.read_text())
    return float(found[before]) if len(found) > before else None


# -- 2. on the fake cluster ------------------------------------------------------------------------


def cluster_cold_starts(folder: Path, rounds: int) -> list[dict[str, float]]:
    samples = []
    for i in range(rounds):
        here = folder / f"round-{i}"
        here.mkdir(parents=True)
        samples.append(_one_cluster_cold_start(here))
    return samples


def _one_cluster_cold_start(folder: Path) -> dict[str, float]:
    address = "127.0.0.2"
    sock = bind(address)
    port = sock.getsockname()[1]
    spec = write_project(folder / "replica")
    with FakeCluster(folder) as cluster:
        api_at_zero(cluster, port)
        with (
            Activator(cluster, folder) as activator,
            concurrent.futures.ThreadPoolExecutor(1) as pool,
        ):
            start = time.perf_counter()
            sent = pool.submit(httpx.post, activator.url + PATH, json=BODY, timeout=120)
            until(lambda: replicas(cluster) > 0)
            sock.listen(128)
            spawned = time.perf_counter()
            cmd = runtime_cmd(spec, "--fd", str(sock.fileno()))
            with process(cmd, folder / "replica.log", pass_fds=[sock.fileno()]):
                sock.close()
                until(lambda: _ready(f"http://{address}:{port}"))
                runtime = time.perf_counter() - spawned
                cluster.set_pods("api-" + NAME, "ready", ips=[address])
                answer = sent.result()
                total = time.perf_counter() - start
    answer.raise_for_status()
    return {"total_s": total, "runtime_s": runtime, "overhead_s": total - runtime}


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- 3. the hop ------------------------------------------------------------------------------------


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % json.dumps(BODY))
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    out = subprocess.run(pinned(cmd, "1"), capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)] if p50 else float("nan")
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": float(p50.group(1)) * scale if p50 else float("nan"),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


def hop(folder: Path, rounds: int, seconds: int, connections: int) -> dict[str, Any]:
    address = "127.0.0.2"
    sock = bind(address)
    port = sock.getsockname()[1]
    spec = write_project(folder / "replica", min_replicas=0, scale_to_zero_after="1h")
    runs: dict[str, list[dict[str, float]]] = {"direct": [], "activator": []}
    with FakeCluster(folder) as cluster:
        api_at_zero(cluster, port)
        cluster.patch("cortex.dev/v1alpha1/realtimeapis", NAME, {"spec": {"replicas": 1}})
        cluster.patch("apps/v1/deployments", "api-" + NAME, {"spec": {"replicas": 1}})
        sock.listen(1024)
        cmd = pinned(runtime_cmd(spec, "--fd", str(sock.fileno())), "0")
        with process(cmd, folder / "replica.log", pass_fds=[sock.fileno()]) as runtime:
            sock.close()
            until(lambda: _ready(f"http://{address}:{port}"))
            cluster.set_pods("api-" + NAME, "ready", ips=[address])
            with Activator(cluster, folder) as activator:
                if PIN:
                    subprocess.run(
                        ["taskset", "-pc", "0", str(activator.proc.pid)],
                        check=True,
                        capture_output=True,
                    )
                urls = {
                    "direct": f"http://{address}:{port}{PATH}",
                    "activator": activator.url + PATH,
                }
                servers = {"direct": [runtime.pid], "activator": [runtime.pid, activator.proc.pid]}
                until(
                    lambda: httpx.post(urls["activator"], json=BODY, timeout=10).status_code == 200
                )
                for _ in range(rounds):
                    for case, url in urls.items():  # interleaved: the same minutes for both
                        runs[case].append(measured(url, seconds, connections, servers[case]))
    med = {
        c: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "cpu_us")}
        for c, rs in runs.items()
    }
    return {
        "runs": runs,
        "median": med,
        "rps_ratio": med["activator"]["rps"] / med["direct"]["rps"],
        "p50_ratio": med["activator"]["p50_ms"] / med["direct"]["p50_ms"],
        "cpu_ratio": med["activator"]["cpu_us"] / med["direct"]["cpu_us"],
    }


def measured(url: str, seconds: int, connections: int, pids: list[int]) -> dict[str, float]:
    """wrk's numbers, and the CPU the server processes (``pids`` and their children) spent per
    request: steadier than req/s on a machine shared with other work."""
    before = sum(cpu_seconds(pid) for pid in pids)
    found = wrk(url, seconds, connections)
    spent = sum(cpu_seconds(pid) for pid in pids) - before
    found["cpu_us"] = spent / max(1.0, found["rps"] * seconds) * 1e6
    return found


def summary(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_to_zero", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--hop-rounds", type=int, default=3, help="wrk rounds per hop case")
    parser.add_argument("--out", type=Path, default=None, help="write the samples here (JSON)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        local = local_cold_starts(folder / "local", args.rounds)
        cluster = cluster_cold_starts(folder / "cluster", args.rounds)
        hopping = hop(folder / "hop", args.hop_rounds, args.seconds, args.connections)
    results = {
        "machine": {"cpus": os.cpu_count(), "pinned": PIN},
        "local_cold_start": {"samples": local, "median": summary(local)},
        "cluster_cold_start": {"samples": cluster, "median": summary(cluster)},
        "hop": hopping,
    }
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    for name in ("local_cold_start", "cluster_cold_start"):
        m = results[name]["median"]
        print(
            f"{name}: total {m['total_s']:.3f}s, runtime ready {m['runtime_s']:.3f}s, "
            f"our overhead {m['overhead_s']:.3f}s (median of {args.rounds}; target <= 0.5s)"
        )
    med = hopping["median"]
    print(
        f"hop: direct {med['direct']['rps']:.0f} req/s p50 {med['direct']['p50_ms']:.2f}ms; "
        f"activator {med['activator']['rps']:.0f} req/s p50 {med['activator']['p50_ms']:.2f}ms; "
        f"req/s ratio {hopping['rps_ratio']:.2f}, p50 ratio {hopping['p50_ratio']:.2f}; "
        f"server CPU per request {med['direct']['cpu_us']:.0f} vs {med['activator']['cpu_us']:.0f}"
        f" us ({hopping['cpu_ratio']:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
