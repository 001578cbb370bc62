"""Every server under test as a ``bench.lib.Case``: the floor and the plain frameworks (our
venv, uvicorn with uvloop + httptools, access log off, one worker), cortex, and each peer from
its own env with its own launch. The overhead and cold-start sections pick from here.

A peer's env is built on first use (bench.envs.python), so only the peers asked for are built.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from bench import envs
from bench.lib import ROOT, Case, free_port

TEXT = {"text": "the quick brown fox"}
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
    "--workers",
    "1",
]
SPEC = "bench/predictors/cortex.yaml"
PEERS_DIR = ROOT / "bench" / "peers"


def uvicorn(name: str, app: str, ready_path: str, *extra: str) -> Case:
    port = free_port()
    args = ["-m", "uvicorn", *extra, app, "--port", str(port), *UVICORN]
    return Case(name, args, port, ready_path=ready_path)


def floor() -> list[Case]:
    """The floor (no framework) and the plain frameworks, from our own venv."""
    return [
        uvicorn("raw ASGI", "bench.servers.plain_asgi:raw_app", "/predict"),
        uvicorn("Starlette route", "bench.servers.plain_asgi:starlette_app", "/health"),
        uvicorn("FastAPI async def", "bench.servers.plain_fastapi:async_app", "/docs"),
        uvicorn("FastAPI def", "bench.servers.plain_fastapi:sync_app", "/docs"),
    ]


def cortex(
    name: str, api: str, *extra: str, runner: str = "cortex.runtime", spec: str = SPEC
) -> Case:
    port = free_port()
    args = ["-m", runner, "--spec", spec, "--api", api, "--port", str(port), "--host", "127.0.0.1"]
    return Case(name, [*args, *extra], port)


def cortex_cases() -> list[Case]:
    """Cortex with its user defaults (metrics, admission control, JSON logs, no access log),
    sync, with the access log, and with admission and metrics off
    (bench/servers/bare_runtime.py)."""
    return [
        cortex("cortex async", "trivial-async"),
        cortex("cortex sync", "trivial-sync"),
        cortex("cortex async + access log", "trivial-async", "--access-log"),
        cortex("cortex async, defaults off", "trivial-async", runner="bench.servers.bare_runtime"),
    ]


def peer(name: str, label: str | None = None, *args: str, **env: str) -> Case:
    """``name``'s trivial server (bench/peers/), started the way its docs recommend; ``args``
    go to its script (LitServe's ``--default-queues``), ``env`` to its environment."""
    port = free_port()
    python = str(envs.python(name))
    if name == "litserve":
        return Case(
            label or "LitServe",
            ["bench/peers/litserve_trivial.py", str(port), *args],
            port,
            ready_path="/health",
            python=python,
            env=env,
        )
    if name == "kserve":
        return Case(
            label or "KServe",
            ["bench/peers/kserve_trivial.py", "--http_port", str(port)],
            port,
            path="/v1/models/trivial:predict",
            body={"instances": [TEXT]},
            ready_path="/v1/models/trivial",
            python=python,
            env={"KSERVE_LOGLEVEL": "WARNING", **env},
        )
    if name == "mlserver":
        return mlserver(port, python, label or "MLServer (parallel_workers=0)", env)
    if name == "bentoml":
        serve = ["-m", "bentoml", "serve", "bench.peers.bentoml_trivial:Trivial"]
        return Case(
            label or "BentoML",
            [*serve, "--host", "127.0.0.1", "--port", str(port)],
            port,
            python=python,
            env={"BENTOML_DO_NOT_TRACK": "true", "PATH": _with_bin(python), **env},
        )
    if name == "ray":
        return Case(
            label or "Ray Serve",
            ["bench/peers/ray_trivial.py", str(port)],
            port,
            ready_path="/-/healthz",
            python=python,
            env={"RAY_USAGE_STATS_ENABLED": "0", **env},
        )
    raise ValueError(f"unknown peer {name!r}: expected one of {', '.join(envs.PEERS)}")


def mlserver(port: int, python: str, label: str, env: dict[str, str]) -> Case:
    """MLServer's CLI on bench/peers/mlserver_trivial; ``parallel_workers`` comes from ``env``
    (MLSERVER_PARALLEL_WORKERS=0 unless given: inference in the server process)."""
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [TEXT["text"]]}]}
    ports = {
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": str(port),
        "MLSERVER_GRPC_PORT": str(free_port()),
        "MLSERVER_METRICS_PORT": str(free_port()),
        # Its Prometheus files would go to .metrics/ in the working directory (the repo's root).
        "MLSERVER_METRICS_DIR": tempfile.mkdtemp(prefix="bench-mlserver-metrics-"),
    }
    return Case(
        label,
        [str(Path(python).parent / "mlserver"), "start", "bench/peers/mlserver_trivial"],
        port,
        path="/v2/models/trivial/infer",
        body=body,
        ready_path="/v2/health/ready",
        python=python,
        env={**ports, "MLSERVER_PARALLEL_WORKERS": "0", **env},
    )


def _with_bin(python: str) -> str:
    """PATH with the env's bin first: BentoML starts its workers by command name."""
    return f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def answer(case: Case, timeout: float = 5.0) -> tuple[int, object]:
    """POST the case's body once: the status and the JSON answer (None if not JSON; status 0
    when nothing answered). A peer answering 404 or 422 fast must never count as fast."""
    data = json.dumps(case.body).encode()
    url = f"http://127.0.0.1:{case.port}{case.path}"
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError:
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None
