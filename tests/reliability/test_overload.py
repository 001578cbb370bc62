"""Overload and drains against a real runtime: the excess is refused with 503 + Retry-After,
what is admitted stays fast, memory and descriptors stay flat, and a draining worker loses
nothing."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, make_api
from tests.reliability.conftest import Figures
from tests.reliability.load import Load, open_fds, processes, rss_bytes
from tests.runtime.harness import RuntimeProcess, write_spec

CAP = 4
WORK_SECONDS = 0.02


def test_three_times_the_cap_only_adds_503s_and_everything_recovers(
    tmp_path: Path, figures: Figures, size: Callable[[Any, Any], Any]
) -> None:
    spec = write_spec(
        tmp_path,
        "slow.py",
        predictor={"threads_per_process": CAP, "config": {"seconds": WORK_SECONDS}},
        autoscaling={"max_replica_concurrency": CAP, "target_replica_concurrency": 1},
    )
    seconds = size(8, 30)
    with RuntimeProcess(spec) as rt:
        url = f"{rt.base}/predict"
        with Load(url, clients=3 * CAP) as warm:  # imports, pools and buffers settle first
            warm.wait_answers(200)
        pids = processes(rt.proc.pid)
        rss_before, fds_before = rss_bytes(pids), open_fds(pids)
        with Load(url, clients=3 * CAP) as load:
            load.run_for(seconds / 2)
            rss_middle = rss_bytes(pids)
            load.run_for(seconds / 2)
        rss_after = rss_bytes(pids)
        rt.wait_for(lambda: rt.metric("cortex_in_flight_requests") == 0, what="0 in flight")
        fds_after = open_fds(pids)
        with Load(url, clients=CAP) as recovered:
            recovered.wait_answers(40)
        statuses = load.statuses()
        figures.record(
            f"{3 * CAP} clients on a cap of {CAP} for {seconds}s",
            sent=len(load.answers),
            lost=len(load.failed()),
            ok=statuses[200],
            refused_503=statuses[503],
            admitted_p50_ms=round(load.p50() * 1000, 1),
            admitted_p99_ms=round(load.p99() * 1000, 1),
            rss_growth_mib=round((rss_after - rss_before) / 2**20, 1),
            fds=f"{fds_before} -> {fds_after}",
        )
    assert load.failed() == [], load.failed()[:5]
    assert statuses[200] > 10 * CAP and statuses[503] > 0
    assert load.p99() < 2.0  # admitted requests wait for nothing but their own work
    assert rss_after - rss_before < 32 * 2**20
    assert abs(rss_after - rss_middle) < 16 * 2**20  # flat: not growing with requests served
    assert fds_after <= fds_before + 2
    assert recovered.failed() == [] and set(recovered.statuses()) == {200}


def _workers(rt: RuntimeProcess) -> list[int]:
    return [pid for pid in processes(rt.proc.pid) if pid != rt.proc.pid]


def test_sigterm_of_one_worker_under_load_loses_no_request(
    tmp_path: Path, figures: Figures, size: Callable[[Any, Any], Any]
) -> None:
    spec = write_spec(
        tmp_path,
        "slow.py",
        predictor={
            "processes_per_replica": 2,
            "threads_per_process": 2,
            "config": {"seconds": WORK_SECONDS},
        },
        autoscaling={"max_replica_concurrency": 16, "target_replica_concurrency": 1},
    )
    drains = size(2, 6)
    with RuntimeProcess(spec) as rt, Load(f"{rt.base}/predict", clients=4) as load:
        load.wait_answers(50)
        for _ in range(drains):
            before = _workers(rt)
            assert len(before) == 2
            os.kill(before[0], signal.SIGTERM)
            rt.wait_for(
                lambda before=before: before[0] not in _workers(rt) and len(_workers(rt)) == 2,
                timeout=60,
                what="the drained worker replaced",
            )
            rt.wait_ready()
            served = len(load.answers)
            load.wait_answers(served + 20)
    figures.record(
        f"SIGTERM of one of 2 workers, {drains} times, 4 clients",
        sent=len(load.answers),
        lost=len(load.failed()),
    )
    assert load.failed() == [], load.failed()[:5]


def test_a_300_kib_config_starts_from_the_rendered_pod_command(
    tmp_path: Path, figures: Figures
) -> None:
    """The spec travels in environment variables of at most 60,000 characters each: one
    variable holding it all would make execve fail ("Argument list too long")."""
    from cortex.k8s import OperatorSettings, Owner, render_deployment

    blob = "x" * (300 * 1024)
    api = make_api("big", "payload_only.py", predictor={"config": {"factor": 2, "blob": blob}})
    deployment = render_deployment(api, Owner("big", "default", "uid-1"), OperatorSettings())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"].replace("$$", "$") for e in container["env"] if "value" in e}
    assert max(len(value) for value in env.values()) < 128 * 1024
    (tmp_path / "payload_only.py").write_text((FIXTURES / "payload_only.py").read_text())
    command = [sys.executable if arg == "python" else arg for arg in container["command"]]
    command = [str(tmp_path) if arg == "/mnt/project" else arg for arg in command]
    port_at = command.index("--port")
    del command[port_at : port_at + 2]
    with RuntimeProcess(tmp_path / "cortex.yaml", command=command, env={**os.environ, **env}) as rt:
        answer = rt.post("/big", json={"x": 4})
    figures.record("a 300 KiB predictor.config in a pod's command", sent=1, lost=0)
    assert answer.json() == {"doubled": 8}
