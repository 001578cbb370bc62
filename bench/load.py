#!/usr/bin/env python3
"""The runtime under load (issue 5): processes and overload. Batching and the cost of admission
control + metrics are sections of ``python -m bench`` now (batching, overhead).

Each part compares cases measured in the same run, ROUNDS times round-robin, medians:
  processes  a GIL-bound predictor with processes_per_replica 2 vs 1 (server on both cores)
  overload   2x more clients than max_replica_concurrency: goodput vs capacity (target >= 90%),
             p99 of admitted requests, memory before/after

    .venv/bin/python bench/load.py [processes overload]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from lib import (
    Case,
    free_port,
    hey,
    machine,
    median,
    rss_mb,
    run_rounds,
    start,
    stop,
    update_readme_section,
    write_results,
)

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = int(os.environ.get("SECONDS", "10"))
SPEC = "bench/predictors/cortex.yaml"


def ours(name: str, api: str, runner: str = "cortex.runtime", cpus: str = "0", body=None) -> Case:
    port = free_port()
    args = ["-m", runner, "--spec", SPEC, "--api", api, "--port", str(port), "--host", "127.0.0.1"]
    case = Case(name, args, port, cpus=cpus)
    if body is not None:
        case.body = body
    return case


def ratio_table(title: str, note: str, runs: dict, base: str) -> tuple[str, list[dict]]:
    base_rps = median(runs[base], "rps")
    rows = [
        {
            "case": n,
            "rps": median(r, "rps"),
            "ratio": median(r, "rps") / base_rps,
            "p50_ms": median(r, "p50_ms"),
            "p99_ms": median(r, "p99_ms"),
            "non_2xx": sum(x["non_2xx"] for x in r),
            "runs": r,
        }
        for n, r in runs.items()
    ]
    lines = [
        f"#### {title}",
        "",
        note,
        "",
        "| case | req/s | ratio | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['case']} | {r['rps']:.0f} | {r['ratio']:.2f}x | {r['p50_ms']:.1f} | "
        f"{r['p99_ms']:.1f} | {r['non_2xx']:.0f} |"
        for r in rows
    ]
    return "\n".join(lines), rows


def processes() -> tuple[str, list[dict]]:
    cases = [
        ours("GIL-bound predictor, 1 process", "cpu-1-process", cpus="0,1"),
        ours("GIL-bound predictor, 2 processes", "cpu-2-processes", cpus="0,1"),
    ]
    runs = run_rounds(cases, ROUNDS, SECONDS, 16)
    note = (
        "A pure-Python ~1 ms predictor; server may use both cores (wrk shares them: it costs "
        "far less than the predictor), wrk 16 connections."
    )
    return ratio_table("processes_per_replica 2 vs 1", note, runs, cases[0].name)


def overload() -> tuple[str, list[dict]]:
    """Capacity at max_replica_concurrency clients, then 2x as many; hey gives per-request data."""
    rows = []
    for _ in range(ROUNDS):
        for clients in (8, 16):
            case = ours(f"{clients} clients", "sleepy", body={"x": 1})
            proc = start(case)
            try:
                hey(case, 2, clients)
                before = rss_mb(proc.pid)
                results = hey(case, SECONDS, clients)
                after = rss_mb(proc.pid)
            finally:
                stop(proc)
            ok = sorted(t for t, status in results if status == 200)
            rows.append(
                {
                    "clients": clients,
                    "goodput": len(ok) / SECONDS,
                    "rejected": sum(1 for _, s in results if s == 503) / SECONDS,
                    "p50_ms": 1000 * ok[len(ok) // 2],
                    "p99_ms": 1000 * ok[int(len(ok) * 0.99)],
                    "rss_before_mb": before,
                    "rss_after_mb": after,
                }
            )
            print(f"overload {clients} clients: {rows[-1]}", flush=True)
    med = {
        c: {k: statistics.median(r[k] for r in rows if r["clients"] == c) for k in rows[0]}
        for c in (8, 16)
    }
    lines = [
        "#### 2x overload",
        "",
        "A 10 ms predictor (sleep, 4 threads), max_replica_concurrency 8; hey with 8 clients "
        "(capacity) then 16 (2x). Goodput = 200s per second; p50/p99 of admitted requests.",
        "",
        "| clients | goodput req/s | vs capacity | 503 per s | p50 ms | p99 ms | "
        "RSS before -> after MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in (8, 16):
        m = med[c]
        lines.append(
            f"| {c} | {m['goodput']:.0f} | {m['goodput'] / med[8]['goodput']:.2f}x | "
            f"{m['rejected']:.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | "
            f"{m['rss_before_mb']:.0f} -> {m['rss_after_mb']:.0f} |"
        )
    return "\n".join(lines), rows


PARTS = {"processes": processes, "overload": overload}


def main() -> None:
    wanted = sys.argv[1:] or list(PARTS)
    for name in wanted:
        started = time.monotonic()
        table, rows = PARTS[name]()
        write_results(
            f"load-{name}",
            {"machine": machine(), "rounds": ROUNDS, "seconds": SECONDS, "rows": rows},
        )
        update_readme_section(
            f"load-{name}",
            table + f"\n\n_{machine()['date']}, {time.monotonic() - started:.0f} s._",
        )
        print(table, flush=True)


if __name__ == "__main__":
    main()
