"""One server, several client counts: load curves, measured and reported (batching, gpu).

A model's load is the costly part of a case, so each server starts once per round, answers one
request that is checked, is warmed up at the largest client count, and is then measured at every
client count in turn. Before each point one request waits for the server to finish what the
previous load left queued (wrk stops sending, not the server working), so that no point
measures the last one's backlog. So each point starts from an empty queue, and its first
clients/throughput seconds fill it (unbatched MiniLM at 64 clients: ~1 s of 10), a small bias
towards lower latencies that every case shares. Servers interleave round-robin (round 1 of
every server, then round 2 ...), pinned as bench.lib pins them. Every sample is kept.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import charts, lib, report

# Cumulative (batches, requests) the server has put through predict: read before and after a
# point, their differences give its mean batch size.
Counter = Callable[[], tuple[float, float]]
# Wraps each point; the dict it yields, filled by its exit, joins the point's result.
Sampler = Callable[[], contextlib.AbstractContextManager[dict[str, float]]]


@dataclass
class Server:
    case: lib.Case
    check: Callable[[Any], bool]  # is this answer to case.body right?
    batches: Counter | None = None  # None: the server does not batch
    sample: Sampler | None = None  # e.g. the GPU's utilisation during the point
    timeout: float = 30.0  # wrk's per-request timeout: queueing behind the model is measured


def answer(case: lib.Case) -> Any:
    """The server's JSON answer to one request with the case's body."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{case.port}{case.path}",
        data=json.dumps(case.body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def sweep(
    servers: list[Server], clients: list[int], settings: lib.Settings
) -> dict[str, dict[str, Any]]:
    """``{case name: {"answer": its JSON answer, "points": {clients: [a result per round]}}}``."""
    runs: dict[str, dict[str, Any]] = {
        s.case.name: {"points": {str(n): [] for n in clients}} for s in servers
    }
    for r in range(settings.rounds):
        for server in servers:
            case = server.case
            proc = lib.start(case)
            try:
                got = answer(case)
                if not server.check(got):
                    raise RuntimeError(f"{case.name}: wrong answer {json.dumps(got)[:300]}")
                runs[case.name]["answer"] = got
                if settings.warmup:
                    lib.wrk(case, settings.warmup, max(clients), timeout=server.timeout)
                for n in clients:
                    answer(case)  # queues behind what the last load left: returns once drained
                    result = _point(server, proc, settings.seconds, n)
                    runs[case.name]["points"][str(n)].append(result)
                    _print(r, case.name, n, result)
            finally:
                lib.stop(proc)
    return runs


def _print(r: int, name: str, clients: int, result: dict[str, float]) -> None:
    batch = f" batch {result['mean_batch']:.1f}" if "mean_batch" in result else ""
    print(
        f"round {r + 1} {name:40s} {clients:4d} clients {result['rps']:8.1f} req/s "
        f"p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms{batch}",
        flush=True,
    )


def _point(
    server: Server, proc: subprocess.Popen[bytes], seconds: float, clients: int
) -> dict[str, float]:
    before = server.batches() if server.batches else None
    with server.sample() if server.sample else contextlib.nullcontext({}) as sampled:
        result = lib.measured(server.case, proc, seconds, clients, timeout=server.timeout)
    result.update(sampled)
    if server.batches and before is not None:
        after = server.batches()
        batches, requests = after[0] - before[0], after[1] - before[1]
        result["batches"] = batches
        result["mean_batch"] = requests / batches if batches else 0.0
    return result


def cortex_batches(port: int) -> Counter:
    """(batches, requests) from cortex's ``cortex_batch_size`` histogram on /metrics."""
    pattern = re.compile(r"^cortex_batch_size_(count|sum)\{[^}]*\} (\S+)$", re.M)

    def read() -> tuple[float, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        totals = {"count": 0.0, "sum": 0.0}
        for kind, value in pattern.findall(text):
            totals[kind] += float(value)
        return totals["count"], totals["sum"]

    return read


def summary(points: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per client count: median, min and max over rounds of every metric that all rounds have;
    the error counts summed."""
    summed = ("non_2xx", "socket_errors")
    out: dict[str, dict[str, Any]] = {}
    for n, runs in points.items():
        keys = [k for k in runs[0] if k not in summed and all(k in run for run in runs)]
        out[n] = {k: lib.spread(runs, k) for k in keys} | {
            k: sum(r[k] for r in runs) for k in summed
        }
    return out


# Report side: the markdown and charts of load curves, from a section's JSON alone.

Column = tuple[str, str, str]  # header, summary key, format of a value


def table(cases: dict[str, Any], clients: list[int], extra: tuple[Column, ...] = ()) -> list[str]:
    """One row per case and client count: req/s, p50, p99 (medians, min-max), the ``extra``
    columns where a case has them ("-" where not), then non-2xx and socket errors."""
    columns: list[Column] = [
        ("req/s", "rps", "{:.1f}"),
        ("p50 ms", "p50_ms", "{:.0f}"),
        ("p99 ms", "p99_ms", "{:.0f}"),
        *extra,
    ]
    head = ["case", "clients", *(c[0] for c in columns), "non-2xx", "socket errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, case in cases.items():
        for n in map(str, clients):
            s = case["summary"][n]
            cells = [report.cell(s[key], f) if key in s else "-" for _, key, f in columns]
            row = [name, n, *cells, f"{s['non_2xx']:.0f}", f"{s['socket_errors']:.0f}"]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def line_charts(
    cases: dict[str, Any], clients: list[int], charts_dir: Path, prefix: str, title: str
) -> list[str]:
    """req/s and p99 vs clients, one line per case (dashed without batching); returns the
    README's image links."""
    links = []
    for metric, ylabel, suffix in (("rps", "req/s", "rps"), ("p99_ms", "p99 ms", "p99")):
        named = {
            name: {
                k: [case["summary"][str(n)][metric][k] for n in clients]
                for k in ("median", "min", "max")
            }
            for name, case in cases.items()
        }
        file = f"{prefix}-{suffix}.png"
        xs = [float(n) for n in clients]
        title_ = f"{title}: {ylabel} vs clients"
        unbatched = [name for name, case in cases.items() if not case["batching"]]
        charts.lines(charts_dir / file, title_, "clients", ylabel, xs, named, dashed=unbatched)
        links.append(f"![{title}: {ylabel} vs clients](charts/{file})")
    return links
