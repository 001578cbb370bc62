"""Benchmark plumbing: start a server pinned to one core, load it with wrk on the other, parse.

Every benchmark compares cases measured in the same run (ratios, not absolutes), runs the cases
round-robin ROUNDS times so that machine drift shows as spread, and reports medians.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PIN = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None


@dataclass
class Case:
    name: str
    args: list[str]  # the server command, without the interpreter
    port: int
    path: str = "/predict"
    body: Any = field(default_factory=lambda: {"text": "the quick brown fox"})
    env: dict[str, str] = field(default_factory=dict)
    ready_path: str = "/readyz"
    cpus: str = "0"
    python: str = sys.executable  # a peer's own env (bench/envs.py), or ours
    cwd: Path = ROOT
    ready_timeout: float = 180.0


@dataclass(frozen=True)
class Settings:
    """How long and how often every section measures; ``smoke`` shrinks every case to a
    second or two (CI runs it so that the benchmarks never rot; no numbers are judged)."""

    rounds: int = 3
    seconds: float = 10.0
    warmup: float = 2.0
    connections: int = 64
    smoke: bool = False
    peers: tuple[str, ...] = ("litserve", "kserve", "mlserver", "bentoml", "ray")

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "peers": list(self.peers)}


def spread(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    """Median, min and max of one metric over rounds."""
    values = [r[key] for r in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(case: Case) -> subprocess.Popen[bytes]:
    """Start the case's server on its CPUs, without waiting for it (see :func:`start`)."""
    cmd = [case.python, *case.args]
    if PIN:
        cmd = ["taskset", "-c", case.cpus, *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **case.env}
    # stderr to a file, not a pipe nobody reads: a chatty server would block once it is full.
    # It lives as long as the server (stop() closes it), hence no context manager.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen(
        cmd,
        cwd=case.cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,  # stop() signals the whole group: peers fork helpers
    )
    proc.stderr = log  # read back by server_log()
    return proc


def server_log(proc: subprocess.Popen[bytes], tail: int = 2000) -> str:
    """The last ``tail`` characters the server wrote to stderr."""
    if proc.stderr is None:
        return ""
    proc.stderr.seek(0)
    return proc.stderr.read().decode(errors="replace")[-tail:]


def start(case: Case) -> subprocess.Popen[bytes]:
    """Start the case's server and wait until its ``ready_path`` answers 200."""
    proc = spawn(case)
    deadline = time.monotonic() + case.ready_timeout
    url = f"http://127.0.0.1:{case.port}{case.ready_path}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{case.name}: server exited: {server_log(proc)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"{case.name}: not ready in {case.ready_timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (its whole process group when it leads one: peers fork helpers),
    SIGKILL it after 30 s, and SIGKILL whatever of its group is left."""
    try:
        leader = os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        leader = False

    def signal_all(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig) if leader else proc.send_signal(sig)

    signal_all(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        signal_all(signal.SIGKILL)
        proc.wait()
    if leader:
        signal_all(signal.SIGKILL)  # helpers the server left behind
    if proc.stderr is not None:
        proc.stderr.close()


_LUA = """wrk.method = "POST"
wrk.body = [==[%s]==]
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(
    case: Case, seconds: float, connections: int, threads: int = 1, timeout: float = 2.0
) -> dict[str, float]:
    """Run wrk against the case's server; returns req/s, p50/p99 ms and non-2xx counts.

    A request slower than ``timeout`` seconds (wrk's default: 2) counts as a socket error and
    leaves the latencies: raise it where queueing behind a slow model is what is measured."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % json.dumps(case.body))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        f"--timeout={timeout:g}s",
        "-s",
        script.name,
        f"http://127.0.0.1:{case.port}{case.path}",
    ]
    if PIN:
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": float(total.group(1)) if total else 0.0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def measured(
    case: Case,
    proc: subprocess.Popen[bytes],
    seconds: float,
    connections: int,
    timeout: float = 2.0,
) -> dict[str, float]:
    """One wrk run, plus the server's CPU per request and its memory after the load."""
    cpu = cpu_seconds(proc.pid)
    result = wrk(case, seconds, connections, timeout=timeout)
    used = cpu_seconds(proc.pid) - cpu
    result["cpu_us_per_request"] = used / result["requests"] * 1e6 if result["requests"] else 0.0
    result["rss_mb"] = rss_mb(proc.pid)
    return result


def run_rounds(
    cases: list[Case], rounds: int, seconds: float, connections: int, warmup: float = 2
) -> dict[str, list[dict[str, float]]]:
    """Run every case ``rounds`` times, round-robin; each run starts a fresh server."""
    runs: dict[str, list[dict[str, float]]] = {c.name: [] for c in cases}
    for r in range(rounds):
        for case in cases:
            proc = start(case)
            try:
                if warmup:
                    wrk(case, warmup, connections)
                result = measured(case, proc, seconds, connections)
            finally:
                stop(proc)
            runs[case.name].append(result)
            print(
                f"round {r + 1} {case.name:45s} {result['rps']:9.0f} req/s "
                f"p50 {result['p50_ms']:.2f} ms p99 {result['p99_ms']:.2f} ms",
                flush=True,
            )
    return runs


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "pinned": PIN,
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu_model": _cpu_model(),
        "load_average_at_start": list(os.getloadavg()),
        "nice": os.nice(0),  # the run's priority: below 0 when started with `nice -n -N`
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def update_readme_section(name: str, table: str) -> None:
    """Replace the README section between markers for this benchmark (or append it)."""
    readme = ROOT / "bench" / "README.md"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{table.rstrip()}\n{end}"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


def hey(case: Case, seconds: int, connections: int) -> list[tuple[float, int]]:
    """Run hey against the case; returns (seconds, status) per request from its CSV output."""
    cmd = [
        "hey",
        "-z",
        f"{seconds}s",
        "-c",
        str(connections),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-d",
        json.dumps(case.body),
        "-o",
        "csv",
        f"http://127.0.0.1:{case.port}{case.path}",
    ]
    if PIN:
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines()[1:]:
        fields = line.split(",")
        if len(fields) >= 7 and fields[6].isdigit():
            rows.append((float(fields[0]), int(fields[6])))
    return rows


def tree(pid: int) -> list[int]:
    """The process and all its descendants, by pid."""
    return [pid, *_children(pid)]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``: the children of each of its threads (a child started from
    a thread, as Ray's and LitServe's helpers are, is listed under that thread only)."""
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return kids + [g for k in kids for g in _children(k)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children so far, in seconds."""
    ticks = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")
