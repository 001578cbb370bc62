#!/usr/bin/env python3
"""Per-request overhead: a trivial predictor on our runtime vs a plain FastAPI app.

Same work in every case (read a JSON dict, answer a small JSON dict), same load generator (wrk,
1 thread, 64 connections, POST ~30-byte JSON), server pinned to CPU 0 and wrk to CPU 1.
Targets (issue 3), against the FastAPI `async def` route with a dict body:
  >= 1.2x for an async predictor, >= 0.9x for a sync predictor (which runs off the event loop).

    .venv/bin/python bench/overhead.py            # ROUNDS=3 SECONDS=10 by default
"""

from __future__ import annotations

import os

from lib import Case, free_port, machine, median, run_rounds, update_readme_section, write_results

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = int(os.environ.get("SECONDS", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "64"))

UVICORN = [
    "--host",
    "127.0.0.1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
]
SPEC = "bench/predictors/cortex.yaml"


def cases() -> list[Case]:
    def plain(name: str, app: str) -> Case:
        port = free_port()
        return Case(
            name,
            ["-m", "uvicorn", f"bench.servers.plain_fastapi:{app}", "--port", str(port), *UVICORN],
            port,
            ready_path="/docs",
        )

    def ours(name: str, api: str) -> Case:
        port = free_port()
        args = ["-m", "cortex.runtime", "--spec", SPEC, "--api", api, "--port", str(port)]
        return Case(name, [*args, "--host", "127.0.0.1"], port)

    return [
        plain("fastapi async def (dict body)", "async_app"),
        plain("fastapi def (thread pool)", "sync_app"),
        ours("cortex, async predict", "trivial-async"),
        ours("cortex, sync predict", "trivial-sync"),
    ]


def main() -> None:
    runs = run_rounds(cases(), ROUNDS, SECONDS, CONNECTIONS)
    base = median(runs["fastapi async def (dict body)"], "rps")
    rows = []
    for name, results in runs.items():
        rps = median(results, "rps")
        rows.append(
            {
                "case": name,
                "rps": rps,
                "ratio": rps / base,
                "p50_ms": median(results, "p50_ms"),
                "p99_ms": median(results, "p99_ms"),
                "non_2xx": sum(r["non_2xx"] for r in results),
                "runs": results,
            }
        )
    write_results(
        "overhead",
        {
            "machine": machine(),
            "rounds": ROUNDS,
            "seconds": SECONDS,
            "connections": CONNECTIONS,
            "cases": rows,
        },
    )
    lines = [
        f"### Per-request overhead (`bench/overhead.py`, {machine()['date']})",
        "",
        f"Trivial predictor, wrk 1 thread / {CONNECTIONS} connections, server on CPU 0, wrk on "
        f"CPU 1, median of {ROUNDS} rounds x {SECONDS} s. Ratio = req/s vs plain FastAPI "
        "`async def` with a dict body (targets: async >= 1.2x, sync >= 0.9x).",
        "",
        "| case | req/s | ratio | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['rps']:.0f} | {row['ratio']:.2f}x | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['non_2xx']:.0f} |"
        )
    update_readme_section("overhead", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
