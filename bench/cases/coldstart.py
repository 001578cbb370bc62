"""Cold start and memory (issue 15, case 3), for cortex, each peer and bare FastAPI.

Process start -> first 200 of a prediction, split into (a) the interpreter and the framework's
imports (a fresh interpreter of that env importing the server's modules, less a bare ``python -c
pass``), (b) the predictor's ``__init__`` (bench/peers/initwork.py: INIT_SECONDS of sleep, timed
from inside), and (c) the framework's own overhead: the rest. Then the replica's memory, per
process: idle after the first 200, and at its peak under a short wrk run.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import charts, lib
from bench.lib import Case, Settings
from bench.peers import cases, initwork
from bench.report import cell, verdict

INIT_SECONDS = 0.2
POLL = 0.01  # seconds between attempts at the first prediction
IMPORT_RUNS = 3  # per round: the median of these (a fresh interpreter each)
SETTLE = 1.0  # seconds idle after the first 200 before the idle memory is read
UVICORN = "uvicorn.main, uvicorn.loops.uvloop, uvicorn.protocols.http.httptools_impl"
# What each server imports before it can serve: its framework, through our server module.
IMPORTS = {
    "FastAPI": f"{UVICORN}, bench.servers.plain_fastapi",
    "cortex": f"{UVICORN}, cortex.runtime.master, bench.peers.cortex_trivial",
    "LitServe": "bench.peers.litserve_trivial",
    "KServe": "bench.peers.kserve_trivial",
    "MLServer": "mlserver.cli.main, mlserver.server, mlserver.codecs",
    "BentoML": "bentoml_cli.cli, bench.peers.bentoml_trivial",
    "Ray Serve": "bench.peers.ray_trivial",
}
OVERHEAD_TARGET, RSS_TARGET = 0.3, 1.2


def servers(settings: Settings) -> list[Case]:
    fastapi = cases.uvicorn(
        "FastAPI", "bench.servers.plain_fastapi:coldstart_app", "/docs", "--factory"
    )
    ours = cases.cortex("cortex", "trivial", spec="bench/peers/cortex.yaml")
    labels = {"mlserver": "MLServer"}
    return [fastapi, ours, *(cases.peer(p, labels.get(p)) for p in settings.peers)]


def import_seconds(case: Case, modules: str) -> tuple[float, float]:
    """(the interpreter's start, + the imports) in seconds, medians of fresh interpreters: the
    start is a bare ``python -c pass`` end to end, the imports are timed inside the interpreter
    (its exit, which frees what they built, is not part of a server's start)."""
    timer = f"import time; t = time.perf_counter(); import {modules}; "
    timer += "print(time.perf_counter() - t)"

    def run(code: str) -> tuple[float, str]:
        cmd = [case.python, "-c", code]
        cmd = ["taskset", "-c", case.cpus, *cmd] if lib.PIN else cmd
        env = {**os.environ, "PYTHONPATH": str(lib.ROOT), **case.env}
        started = time.monotonic()
        out = subprocess.run(cmd, cwd=case.cwd, env=env, check=True, capture_output=True)
        return time.monotonic() - started, out.stdout.decode()

    bare = statistics.median(run("pass")[0] for _ in range(IMPORT_RUNS))
    imports = statistics.median(float(run(timer)[1]) for _ in range(IMPORT_RUNS))
    return bare, bare + imports


@contextlib.contextmanager
def on_cpu_1() -> Iterator[None]:
    """Keep this process (the poller) off the server's CPU while it starts."""
    before = os.sched_getaffinity(0)
    if lib.PIN:
        os.sched_setaffinity(0, {1})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def first_200(case: Case, proc: Any) -> float:
    """Seconds from now until the case answers a prediction with a 200 (raises if it exits)."""
    deadline = time.monotonic() + case.ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{case.name}: server exited: {lib.server_log(proc)}")
        if cases.answer(case, timeout=2)[0] == 200:
            return time.monotonic()
        time.sleep(POLL)
    raise RuntimeError(f"{case.name}: no 200 in {case.ready_timeout:.0f} s")


def memory(pid: int) -> list[dict[str, Any]]:
    """Each process of the tree: pid, command (short), RSS and PSS in MiB. PSS shares each
    page among the processes mapping it, so forked workers do not count the master twice."""
    rows = []
    for p in lib.tree(pid):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text().split("\n")
            kib = {ln.split(":")[0]: int(ln.split()[1]) for ln in rollup[1:] if ln.strip()}
            rows.append(
                {
                    "pid": p,
                    "command": " ".join(command.split()[:4])[:100],
                    "rss_mb": kib["Rss"] / 1024,
                    "pss_mb": kib["Pss"] / 1024,
                }
            )
    return rows


def under_load(case: Case, proc: Any, settings: Settings) -> dict[str, Any]:
    """A short wrk run while the tree's memory is sampled; the peak and the load's result."""
    peak = {"rss_mb": 0.0, "pss_mb": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            rows = memory(proc.pid)
            for key in peak:
                peak[key] = max(peak[key], sum(r[key] for r in rows))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = lib.wrk(case, min(settings.seconds, 5.0), settings.connections)
    finally:
        done.set()
        sampler.join()
    return {
        **{f"peak_{k}": v for k, v in peak.items()},
        "rps": result["rps"],
        "errors": result["non_2xx"] + result["socket_errors"],
    }


def measure(case: Case, settings: Settings) -> dict[str, Any]:
    """One cold start of one server, its memory idle and under load; failures are recorded."""
    with tempfile.TemporaryDirectory() as tmp:
        init_file = Path(tmp) / "init.json"
        case.env.update({initwork.SECONDS: str(INIT_SECONDS), initwork.FILE: str(init_file)})
        python_s, imported_s = import_seconds(case, IMPORTS[case.name])
        with on_cpu_1():
            started = time.monotonic()
            proc = lib.spawn(case)
            try:
                total = first_200(case, proc) - started
            except RuntimeError as exc:
                lib.stop(proc)
                return {"error": str(exc)[-600:]}
        try:
            time.sleep(SETTLE)
            idle = memory(proc.pid)
            load = under_load(case, proc, settings)
            init = json.loads(init_file.read_text())["seconds"] if init_file.exists() else None
        finally:
            lib.stop(proc)
    if init is None:
        return {"error": "the init work never ran (no init file)", "total_s": total}
    return {
        "total_s": total,
        "python_s": python_s,
        "imports_s": imported_s,
        "init_s": init,
        "overhead_s": total - imported_s - init,
        "idle": idle,
        "idle_rss_mb": sum(r["rss_mb"] for r in idle),
        "idle_pss_mb": sum(r["pss_mb"] for r in idle),
        "idle_root_rss_mb": idle[0]["rss_mb"],
        "idle_others_rss_mb": sum(r["rss_mb"] for r in idle[1:]),
        "load": load,
    }


def run(settings: Settings) -> dict[str, Any]:
    servers_ = servers(settings)
    samples: dict[str, list[dict[str, Any]]] = {c.name: [] for c in servers_}
    for r in range(settings.rounds):
        for case in servers_:
            result = measure(case, settings)
            samples[case.name].append(result)
            shown = result.get("error") or (
                f"first 200 in {result['total_s']:.2f} s (imports {result['imports_s']:.2f}, "
                f"init {result['init_s']:.2f}, overhead {result['overhead_s']:.2f}), "
                f"idle RSS {result['idle_rss_mb']:.0f} MiB in {len(result['idle'])} process(es)"
            )
            print(f"round {r + 1} {case.name:32s} {shown}", flush=True)
    return {
        "init_seconds": INIT_SECONDS,
        "frameworks": {name: {"samples": s, **summary(s)} for name, s in samples.items()},
    }


KEYS = (
    "total_s",
    "python_s",
    "imports_s",
    "init_s",
    "overhead_s",
    "idle_rss_mb",
    "idle_pss_mb",
    "idle_root_rss_mb",
    "idle_others_rss_mb",
)


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [s for s in samples if "error" not in s]
    out: dict[str, Any] = {"failed_rounds": len(samples) - len(ok)}
    if ok:
        out.update({key: lib.spread(ok, key) for key in KEYS})
        loads = [s["load"] for s in ok]
        out["load_peak_rss_mb"] = lib.spread(loads, "peak_rss_mb")
        out["load_peak_pss_mb"] = lib.spread(loads, "peak_pss_mb")
        out["processes"] = max(len(s["idle"]) for s in ok)
        out["load_errors"] = sum(x["errors"] for x in loads)
    return out


def report(section: dict[str, Any], charts_dir: Path) -> str:
    ok = {n: f for n, f in section["frameworks"].items() if "total_s" in f}
    lines = [
        "### Cold start and memory (section `coldstart`)",
        "",
        "Process start to the first 200 of a prediction (polled every 10 ms from CPU 1), split "
        "into the interpreter and the framework's imports (a fresh interpreter of its env "
        "importing the server's modules), the predictor's `__init__` "
        f"({section['init_seconds']:g} s of sleep, timed from inside) and the framework's own "
        "overhead (the rest: its other processes' start-up, binding, loading, readiness). "
        "(c) is a difference of measurements taken a moment apart, so on a loaded machine a "
        "small one can read below zero.",
        "",
        "| framework | first 200 s | (a) interpreter + imports s | of which the bare interpreter s "
        "| (b) `__init__` s | (c) own overhead s |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in ok.items():
        lines.append(
            f"| {name} | {cell(f['total_s'], '{:.2f}')} | {cell(f['imports_s'], '{:.2f}')} | "
            f"{cell(f['python_s'], '{:.2f}')} | {cell(f['init_s'], '{:.2f}')} | "
            f"{cell(f['overhead_s'], '{:.2f}')} |"
        )
    lines += ["", *memory_table(ok), *failures(section), "", *targets(ok), ""]
    lines += charts_of(ok, charts_dir)
    return "\n".join(lines)


def memory_table(ok: dict[str, Any]) -> list[str]:
    lines = [
        "Memory in MiB, idle after the first 200 and at the peak of a short wrk run. RSS sums "
        "every process of the replica (a page shared after a fork counts in each); PSS splits "
        "shared pages among their processes. First process: cortex's master, a peer's main "
        "process; the others: cortex's worker, a peer's helpers.",
        "",
        "| framework | processes | idle RSS, all | first process | the others | idle PSS, all "
        "| peak RSS under load | peak PSS under load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in ok.items():
        lines.append(
            f"| {name} | {f['processes']} | {cell(f['idle_rss_mb'])} | "
            f"{cell(f['idle_root_rss_mb'])} | {cell(f['idle_others_rss_mb'])} | "
            f"{cell(f['idle_pss_mb'])} | {cell(f['load_peak_rss_mb'])} | "
            f"{cell(f['load_peak_pss_mb'])} |"
        )
    return lines


def failures(section: dict[str, Any]) -> list[str]:
    failed = [(n, f) for n, f in section["frameworks"].items() if f["failed_rounds"]]
    lines = ["", "Did not start:"] if failed else []
    for name, f in failed:
        first = next(s["error"] for s in f["samples"] if "error" in s)
        lines.append(f"- {name}: {f['failed_rounds']} round(s) failed: `{first[:300]}`")
    return lines


def targets(ok: dict[str, Any]) -> list[str]:
    if "cortex" not in ok:
        return []
    ours = ok["cortex"]
    lines = ["| target | needed | this run | |", "|---|---|---|---|"]
    got = ours["overhead_s"]["median"]
    lines.append(
        f"| cortex's own cold-start overhead | <= {OVERHEAD_TARGET:g} s | {got:.2f} s | "
        f"{verdict(got, OVERHEAD_TARGET, higher_is_better=False)} |"
    )
    if "FastAPI" in ok:
        base = ok["FastAPI"]
        for label, key, base_key in (
            ("idle RSS, master + worker", "idle_rss_mb", "idle_rss_mb"),
            ("idle PSS, master + worker", "idle_pss_mb", "idle_pss_mb"),
            ("idle RSS, the worker alone", "idle_others_rss_mb", "idle_rss_mb"),
        ):
            got = ours[key]["median"] / base[base_key]["median"]
            lines.append(
                f"| cortex {label} vs FastAPI's process | <= {RSS_TARGET:g}x | {got:.2f}x | "
                f"{verdict(got, RSS_TARGET, higher_is_better=False)} |"
            )
    return lines


def charts_of(ok: dict[str, Any], charts_dir: Path) -> list[str]:
    names = list(ok)
    parts = {
        "interpreter + imports": [ok[n]["imports_s"]["median"] for n in names],
        "predictor init": [ok[n]["init_s"]["median"] for n in names],
        "own overhead": [max(0.0, ok[n]["overhead_s"]["median"]) for n in names],
    }
    charts.stacked(
        charts_dir / "coldstart.png",
        "Process start to first 200 (medians)",
        "seconds",
        names,
        parts,
    )
    rss = {s: [ok[n]["idle_rss_mb"][s] for n in names] for s in ("median", "min", "max")}
    charts.bars(
        charts_dir / "coldstart-rss.png",
        "Idle RSS of a replica, all its processes",
        "MiB",
        names,
        rss,
    )
    return [
        "![cold start: imports, __init__ and own overhead](charts/coldstart.png)",
        "![idle RSS per framework](charts/coldstart-rss.png)",
    ]
