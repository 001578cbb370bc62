#!/usr/bin/env python3
"""Operator convergence: N RealtimeAPIs created at once, the real operator process reconciling.

The fake API server (tests/fakeapi, kmock-based, real HTTP on 127.0.0.1) runs in this process;
``python -m cortex.operator`` runs in its own process, as in a cluster. For each size (1, 50,
500 and 2,000 APIs), per round, on a fresh server and operator:

1. create: all APIs are created in one instant; time until every API has its four children
   (Deployment, Service, Ingress, HPA) and a status (``updating``: no pod is ready yet), and the
   API requests per API that took;
2. ready: every pod turns ready at once; time until every API reports ``live``;
3. restart: a second operator process starts on the converged cluster; time until it logs that
   every API had its first pass ("in sync"), the requests per API it sent (steady state: its
   watches only) and how many objects it wrote (should be 0).

    .venv/bin/python bench/operator_convergence.py   # SIZES=1,50,500,2000 ROUNDS=3 by default
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.charts import lines
from bench.lib import ROOT, Settings, spread, stop
from cortex.k8s import custom_resource_definition
from tests.fakeapi import FakeCluster
from tests.fakeapi.controllers import set_pods

SIZES = (1, 50, 500, 2000)
SMOKE_SIZES = (1, 50)
TIMEOUT = 300.0
CHILDREN = (
    "apps/v1/deployments",
    "v1/services",
    "networking.k8s.io/v1/ingresses",
    "autoscaling/v2/horizontalpodautoscalers",
)
RAPI = "cortex.dev/v1alpha1/realtimeapis"


def body(name: str) -> dict[str, Any]:
    spec = {"predictor": {"type": "python", "path": "predictor.py"}, "compute": {"gpu": 1}}
    return {
        "apiVersion": "cortex.dev/v1alpha1",
        "kind": "RealtimeAPI",
        "metadata": {"name": name},
        "spec": spec,
    }


def names(size: int) -> list[str]:
    return [f"api{i:03d}" for i in range(size)]


def counts(cluster: FakeCluster, size: int) -> dict[str, int]:
    """Computed on the server's loop: APIs with all children, with a status, live."""

    def count() -> dict[str, int]:
        store = cluster.store
        kinds = [store.kind(res) for res in CHILDREN]
        rapi = store.kind(RAPI)
        result = {"children": 0, "status": 0, "live": 0}
        for name in names(size):
            if all(store.find(kind, "default", f"api-{name}") for kind in kinds):
                result["children"] += 1
            word = ((store.find(rapi, "default", name) or {}).get("status") or {}).get("status")
            result["status"] += word is not None
            result["live"] += word == "live"
        return result

    return cluster.call(count)


def wait(check: Callable[[], bool], what: str) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > TIMEOUT:
            raise RuntimeError(f"not converged after {TIMEOUT:.0f} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def start_operator(cluster: FakeCluster, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "CORTEX_OPERATOR_NAMESPACE": "default",
        # four children per API, as before routing became a setting: an Ingress, and an HPA
        "CORTEX_OPERATOR_ROUTING": "ingress",
        "CORTEX_OPERATOR_INGRESS_CLASS": "nginx",
        "CORTEX_OPERATOR_AUTOSCALER": "hpa",
        "PYTHONPATH": str(ROOT),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cortex.operator"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def breakdown(served: list[tuple[str, str, int]]) -> dict[str, float]:
    """Requests by purpose: child lookups and applies, status writes, Events, the rest."""
    parts = {"child_gets": 0.0, "child_applies": 0.0, "status_writes": 0.0, "events": 0.0}
    for method, path, _ in served:
        if method == "POST" and path.endswith("/events"):
            parts["events"] += 1
        elif method == "PATCH" and path.endswith("/status"):
            parts["status_writes"] += 1
        elif method == "PATCH":
            parts["child_applies"] += 1
        elif method == "GET" and "/api-" in path:
            parts["child_gets"] += 1
    parts["requests"] = float(len(served))
    return parts


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def converge(cluster: FakeCluster, log: Path, size: int) -> dict[str, float]:
    """Phases 1 and 2 with a fresh operator process."""
    cpu = cpu_seconds()
    operator = start_operator(cluster, log)
    try:
        wait(
            lambda: any(m == "GET" and "realtimeapis" in p for m, p, _ in cluster.served()),
            "the operator to start watching",
        )
        before = len(cluster.served())
        kind = cluster.call(lambda: cluster.store.kind(RAPI))
        cluster.call(lambda: [cluster.store.create(kind, "default", body(n)) for n in names(size)])
        created = wait(
            lambda: (c := counts(cluster, size))["children"] == size and c["status"] == size,
            "children and status of every API",
        )
        requests = breakdown(cluster.served()[before:])
        cluster.call(
            lambda: [set_pods(cluster.store, "default", f"api-{n}", "ready") for n in names(size)]
        )
        ready = wait(lambda: counts(cluster, size)["live"] == size, "every API live")
    finally:
        stop(operator)
    return {
        "create_s": created,
        **requests,
        "ready_s": ready,
        "operator_cpu_s": cpu_seconds() - cpu,
    }


def restart(cluster: FakeCluster, log: Path, size: int) -> dict[str, float]:
    """Phase 3: a new operator process on the converged cluster."""
    mark, logged = len(cluster.served()), log.stat().st_size
    synced = f"in sync: {size} APIs checked"

    def in_sync() -> bool:
        with log.open("rb") as text:
            text.seek(logged)
            return synced.encode() in text.read()

    start = time.monotonic()
    operator = start_operator(cluster, log)
    try:
        wait(in_sync, "the restarted operator")
        seconds = time.monotonic() - start
        time.sleep(1.0)  # anything it would (wrongly) write lands now
        served = cluster.served()[mark:]
    finally:
        stop(operator)
    writes = [m for m, _, _ in served if m in ("POST", "PATCH", "PUT", "DELETE")]
    return {
        "restart_s": seconds,
        "restart_requests": float(len(served)),
        "restart_writes": float(len(writes)),
    }


def one_round(folder: Path, size: int) -> dict[str, float]:
    log = folder / "operator.log"
    with FakeCluster(folder) as cluster:
        cluster.create(
            "apiextensions.k8s.io/v1/customresourcedefinitions", custom_resource_definition()
        )
        result = {**converge(cluster, log, size), **restart(cluster, log, size)}
    text = log.read_text()
    if "Traceback" in text:
        raise RuntimeError(f"the operator logged a traceback:\n{text[-3000:]}")
    return result


def run(settings: Settings) -> dict[str, Any]:
    """Every size, ``settings.rounds`` rounds each, interleaved (round 1 of every size, ...)."""
    sizes = SMOKE_SIZES if settings.smoke else SIZES
    runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
    for index in range(settings.rounds):
        for size in sizes:
            with tempfile.TemporaryDirectory() as folder:
                result = one_round(Path(folder), size)
            runs[size].append(result)
            shown = ", ".join(f"{k} {v:.2f}" for k, v in result.items())
            print(f"operator: {size} APIs, round {index + 1}: {shown}", flush=True)
    return {
        "sizes": {
            str(size): {
                "runs": results,
                **{key: spread(results, key) for key in results[0]},
            }
            for size, results in runs.items()
        }
    }


def report(section: dict[str, Any], charts: Path) -> str:
    sizes = section["sizes"]

    def cell(size: str, key: str) -> str:
        stat = sizes[size][key]
        return f"{stat['median']:.2f} s ({stat['min']:.2f}-{stat['max']:.2f})"

    def per(size: str, key: str) -> str:
        return f"{sizes[size][key]['median'] / int(size):.1f}"

    rows = [
        (
            f"{int(size):,}",
            cell(size, "create_s"),
            f"{per(size, 'requests')} ({per(size, 'child_gets')} GET, "
            f"{per(size, 'child_applies')} apply, {per(size, 'status_writes')} status, "
            f"{per(size, 'events')} Event)",
            cell(size, "ready_s"),
            cell(size, "restart_s"),
            per(size, "restart_requests"),
            f"{sizes[size]['restart_writes']['max']:.0f}",
            f"{sizes[size]['operator_cpu_s']['median']:.1f} s",
        )
        for size in sizes
    ]
    chart = charts / "operator.png"
    xs = [float(size) for size in sizes]
    lines(
        chart,
        "RealtimeAPIs created at once: seconds until all have children + status, and until live",
        "APIs",
        "seconds",
        xs,
        {
            "create -> children + status": _series(section, "create_s"),
            "pods ready -> all live": _series(section, "ready_s"),
            "operator restart -> in sync": _series(section, "restart_s"),
        },
        ylog=True,
    )
    return "\n".join(
        [
            "### Operator: many APIs at once (section `operator`)",
            "",
            "N RealtimeAPIs (1 GPU each; Ingress routing, HPA) created at once against the fake "
            "API server (tests/fakeapi: kmock, real HTTP on 127.0.0.1, in the benchmark's "
            "process); `python -m cortex.operator` in its own process; both share the machine's "
            "CPUs (not pinned). Each round on a fresh server and operator. Create: until every "
            "API has its four children and a status; ready: every pod turns ready at once, until "
            "every API is `live`; restart: a new operator process on the converged cluster, until "
            "it logs that every API had its first pass (includes the process start).",
            "",
            "| APIs | create | requests per API (create) | ready -> live | restart "
            "| requests per API (restart) | writes on restart (max) "
            "| operator CPU (create + ready) |",
            "|---|---|---|---|---|---|---|---|",
            *("| " + " | ".join(row) + " |" for row in rows),
            "",
            f"![operator convergence](charts/{chart.name})",
        ]
    )


def _series(section: dict[str, Any], key: str) -> dict[str, list[float]]:
    stats = [size[key] for size in section["sizes"].values()]
    return {part: [stat[part] for stat in stats] for part in ("median", "min", "max")}
