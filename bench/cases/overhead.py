"""Overhead (issue 15, case 1): a trivial predictor on every server, per request.

The floor (raw ASGI), the plain frameworks, cortex in four configurations and each peer with its
own recommended launch (bench/peers/cases.py) answer the same small JSON under wrk (1 thread,
``settings.connections`` connections) after a warm-up, round-robin, a fresh server each round.
Every server's answer is checked once before load: a 404 or 422 answered fast is a failure, not
a fast server.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Any

from bench import charts, lib
from bench.lib import Case, Settings
from bench.peers import cases
from bench.report import cell, verdict

BASE, FLOOR, OURS = "FastAPI async def", "raw ASGI", "cortex async"
DEFAULT_QUEUES = "LitServe (default queues)"
DEFAULT_WORKERS = "MLServer (default parallel_workers)"
METRICS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")
ANSWER_WAIT = 10.0  # seconds a ready server may take to answer its first prediction with a 200
COULD_NOT = {
    "LitServe": "its inference worker runs in its own process behind ZeroMQ (fast_queue) and "
    "cannot share the API server's; log level warning, access log off",
    "KServe": "its REST server is a FastAPI app with a timing middleware that is always on; "
    "latency logging off, access log (uvicorn.access) raised to WARNING",
    "MLServer (parallel_workers=0)": "its gRPC server always starts beside the REST one; "
    "metrics (its default, as ours) stay on, on their own port; debug (access log) off",
    DEFAULT_QUEUES: "LitServe's default: multiprocessing queues instead of ZeroMQ",
    DEFAULT_WORKERS: "MLServer's default (parallel_workers=1): inference in a worker process, "
    "each request and answer sent over a queue; parallel_workers=0 keeps the model in the "
    "server process, the fair setting for a model that costs nothing to run",
    "BentoML": "its supervisor process (circus) runs beside the worker, metrics stay on (its "
    "default, as ours); access log off in the service config",
    "Ray Serve": "the HTTP proxy, controller, replica actor, GCS and raylet always run as separate "
    "processes; access log off, log level WARNING, dashboard off",
}


def servers(settings: Settings) -> list[tuple[str, Case]]:
    """(group, case) for every server of this run: the floor and cortex always, the peers asked."""
    grouped = [("floor", c) for c in cases.floor()] + [("cortex", c) for c in cases.cortex_cases()]
    for peer in settings.peers:
        grouped.append(("peer", cases.peer(peer)))
        if settings.smoke:
            continue
        # Their defaults where we chose otherwise: recorded, not judged.
        if peer == "litserve":
            grouped.append(("default", cases.peer(peer, DEFAULT_QUEUES, "--default-queues")))
        if peer == "mlserver":
            default = cases.peer(peer, DEFAULT_WORKERS)
            del default.env["MLSERVER_PARALLEL_WORKERS"]
            grouped.append(("default", default))
    return grouped


def measure(case: Case, settings: Settings) -> dict[str, Any]:
    """One round of one case on a fresh server; a failure is recorded, never raised."""
    try:
        proc = lib.start(case)
    except RuntimeError as exc:
        return {"error": str(exc)[-600:]}
    try:
        deadline = time.monotonic() + ANSWER_WAIT
        status, body = cases.answer(case)
        while status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            status, body = cases.answer(case)
        if status != 200 or not isinstance(body, dict | list):
            log = lib.server_log(proc)
            seen = f"answered {status}: {str(body)[:200]}" if status else "no answer"
            return {"error": f"{seen}; server log: {first_error(log)}", "log": log}
        if settings.warmup:
            lib.wrk(case, settings.warmup, settings.connections)
        result: dict[str, Any] = lib.measured(case, proc, settings.seconds, settings.connections)
        result["processes"] = len(lib.tree(proc.pid))
        result["answer"] = str(body)[:200]
        return result
    finally:
        lib.stop(proc)


def first_error(log: str) -> str:
    """The first exception a server's log names (``RuntimeError: ...``): the cause; what
    follows it is often the shutdown it led to (``CancelledError``)."""
    found = re.search(r"^[\w.]*(?:Error|Exception): .*$", log, re.M)
    return found.group(0)[:300] if found else "(no exception in its log)"


def run(settings: Settings) -> dict[str, Any]:
    grouped = servers(settings)
    samples: dict[str, list[dict[str, Any]]] = {case.name: [] for _, case in grouped}
    for r in range(settings.rounds):
        for _, case in grouped:
            result = measure(case, settings)
            samples[case.name].append(result)
            shown = result.get("error") or (
                f"{result['rps']:9.0f} req/s p50 {result['p50_ms']:.2f} ms "
                f"p99 {result['p99_ms']:.2f} ms"
            )
            print(f"round {r + 1} {case.name:40s} {shown}", flush=True)
    return {
        "connections": settings.connections,
        "cases": {
            case.name: {
                "group": group,
                "command": " ".join(case.args),
                "samples": samples[case.name],
                **summary(samples[case.name]),
            }
            for group, case in grouped
        },
    }


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and min-max over the rounds that ran, and every error of every round."""
    ok = [s for s in samples if "error" not in s]
    out: dict[str, Any] = {"failed_rounds": len(samples) - len(ok)}
    if ok:
        out.update({key: lib.spread(ok, key) for key in METRICS})
        out["errors"] = sum(s["non_2xx"] + s["socket_errors"] for s in ok)
        out["processes"] = max(s["processes"] for s in ok)
    return out


def ratio(section: dict[str, Any], case: str, base: str, key: str = "rps") -> dict[str, float]:
    """``case`` / ``base`` round by round (the rounds are interleaved, so drift cancels)."""
    pairs = zip(section["cases"][case]["samples"], section["cases"][base]["samples"], strict=True)
    values = [a[key] / b[key] for a, b in pairs if "error" not in a and "error" not in b and b[key]]
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def report(section: dict[str, Any], charts_dir: Path) -> str:
    served = {n: c for n, c in section["cases"].items() if "rps" in c}
    lines = [
        "### Overhead: a trivial predictor on every server (section `overhead`)",
        "",
        f"Every server answers the same small JSON (read the body, answer a dict) under wrk, "
        f"1 thread / {section['connections']} connections, after a warm-up; one worker or "
        "replica each, server on CPU 0, wrk on CPU 1; ratios are taken round by round, then "
        "the median (min-max). CPU per request sums the server's whole process tree.",
        "",
        "| case | req/s | vs FastAPI `async def` | p50 ms | p99 ms | p99/p50 | CPU µs/req "
        "| processes | non-2xx + socket errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, case in served.items():
        errors = f"**{case['errors']:.0f}**" if case["errors"] else "0"
        lines.append(
            f"| {name} | {cell(case['rps'])} | {cell(ratio(section, name, BASE), '{:.2f}x')} | "
            f"{cell(case['p50_ms'], '{:.2f}')} | {cell(case['p99_ms'], '{:.1f}')} | "
            f"{case['p99_ms']['median'] / case['p50_ms']['median']:.1f} | "
            f"{cell(case['cpu_us_per_request'])} | {case['processes']} | {errors} |"
        )
    lines += failures(section)
    lines += ["", *versus(section), "", *targets(section), "", *limits(section)]
    lines += charts_of(served, charts_dir)
    return "\n".join(lines)


def failures(section: dict[str, Any]) -> list[str]:
    failed = [(n, c) for n, c in section["cases"].items() if c["failed_rounds"]]
    lines = ["", "Did not serve:"] if failed else []
    for name, case in failed:
        first = next(s["error"] for s in case["samples"] if "error" in s)
        lines.append(f"- {name}: {case['failed_rounds']} round(s) failed: `{first[:300]}`")
    return lines


def versus(section: dict[str, Any]) -> list[str]:
    names = [
        n
        for n, c in section["cases"].items()
        if "rps" in c and (n == FLOOR or c["group"] in ("peer", "default"))
    ]
    lines = ["| cortex async vs | req/s ratio |", "|---|---|"]
    return lines + [f"| {n} | {cell(ratio(section, OURS, n), '{:.2f}x')} |" for n in names]


def targets(section: dict[str, Any]) -> list[str]:
    """Issue 15's targets that this run can judge (a case that did not serve is skipped)."""
    present = {n for n, c in section["cases"].items() if "rps" in c}
    rows: list[tuple[str, str, str, float]] = [
        ("cortex sync vs FastAPI `async def`", "cortex sync", BASE, 0.9),
        ("cortex async vs FastAPI `async def`", OURS, BASE, 1.2),
        ("cortex async vs KServe", OURS, "KServe", 3.0),
        ("cortex async vs MLServer", OURS, "MLServer (parallel_workers=0)", 3.0),
        ("cortex async vs LitServe", OURS, "LitServe", 3.0),
        ("defaults on vs defaults off", OURS, "cortex async, defaults off", 0.9),
        ("cortex async vs raw ASGI", OURS, FLOOR, 0.6),
    ]
    lines = ["| target | needed | this run | |", "|---|---|---|---|"]
    for label, case, base, needed in rows:
        if case in present and base in present:
            got = ratio(section, case, base)["median"]
            lines.append(f"| {label} | >= {needed:g}x | {got:.2f}x | {verdict(got, needed)} |")
    for name in sorted(n for n in present if section["cases"][n]["group"] == "cortex"):
        case = section["cases"][name]
        got = case["p99_ms"]["median"] / case["p50_ms"]["median"]
        met = verdict(got, 3.0, higher_is_better=False)
        lines.append(f"| p99 / p50, {name} | <= 3x | {got:.1f}x | {met} |")
    return lines


def limits(section: dict[str, Any]) -> list[str]:
    lines = ["What each peer could not switch off, and how it was quieted:", ""]
    return lines + [f"- {n}: {COULD_NOT[n]}." for n in section["cases"] if n in COULD_NOT]


def charts_of(served: dict[str, Any], charts_dir: Path) -> list[str]:
    names = list(served)
    for key, file, title, unit in (
        ("rps", "overhead-rps.png", "Trivial predictor: requests per second", "req/s"),
        ("p99_ms", "overhead-p99.png", "Trivial predictor: p99 latency", "p99 ms"),
    ):
        series = {s: [served[n][key][s] for n in names] for s in ("median", "min", "max")}
        charts.bars(charts_dir / file, title, unit, names, series)
    return [
        "",
        "![requests per second per case](charts/overhead-rps.png)",
        "![p99 latency per case](charts/overhead-p99.png)",
    ]
