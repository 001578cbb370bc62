"""``min_replicas: 0`` on a laptop: the runtime stops its workers when idle, its master keeps the
port, holds the requests that come (the same bound, timeout and header as the cluster's
activator) and wakes the workers."""

from __future__ import annotations

import concurrent.futures
import socket
from pathlib import Path

import pytest

from cortex.contracts import COLD_START_HEADER
from cortex.runtime.hold import IdleTimer
from tests.runtime.harness import RuntimeProcess, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def sleepy(tmp_path: Path, **autoscaling: object) -> tuple[Path, Path]:
    """A spec whose predictor's __init__ waits for the file ``gate`` (there at first)."""
    gate = tmp_path / "gate"
    gate.touch()
    scaling = {"min_replicas": 0, "scale_to_zero_after": "1s", **autoscaling}
    spec = write_spec(
        tmp_path, "slow_init.py", predictor={"config": {"gate": str(gate)}}, autoscaling=scaling
    )
    return spec, gate


def asleep(runtime: RuntimeProcess) -> bool:
    return runtime.status()["state"] == "asleep"


def test_the_idle_timer_counts_from_the_last_activity_on_the_callers_clock() -> None:
    timer = IdleTimer(now=0.0)
    assert timer.observe(10.0, (0, 5.0)) == 0.0  # the counter moved: activity
    assert timer.observe(309.0, (0, 5.0)) == 299.0  # 4:59
    assert timer.observe(310.0, (0, 5.0)) == 300.0  # 5:00
    assert timer.observe(311.0, (1, 5.0)) == 0.0  # a request in flight


def test_an_idle_api_sleeps_with_its_port_held_and_the_next_requests_wake_it(
    tmp_path: Path,
) -> None:
    spec, _ = sleepy(tmp_path)
    with RuntimeProcess(spec) as runtime:
        runtime.wait_for(lambda: asleep(runtime), what="the API asleep")
        assert runtime.workers() == []
        probe = runtime.get("/readyz")  # answered by the master: it does not wake the API
        assert probe.status_code == 200 and asleep(runtime)

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: runtime.post(json={}), range(3)))

    assert [a.status_code for a in answers] == [200] * 3
    # those held while it woke say so; one that came after the wake went straight in
    assert any(float(a.headers.get(COLD_START_HEADER, -1)) >= 0 for a in answers)
    assert all(a.json() == {"ok": True} for a in answers)


def test_a_full_queue_is_503_and_a_slow_wake_is_503_after_the_timeout(tmp_path: Path) -> None:
    spec, gate = sleepy(tmp_path, max_queue_length=1, scale_from_zero_timeout="2s")
    with RuntimeProcess(spec) as runtime:
        runtime.wait_for(lambda: asleep(runtime), what="the API asleep")
        gate.unlink()  # the wake will not finish: __init__ waits for the gate
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(runtime.post, json={})
            runtime.wait_for(lambda: runtime.status()["state"] == "loading", what="the wake")
            overflow = runtime.post(json={})
            timed_out = held.result()
        gate.touch()

    assert overflow.status_code == 503 and overflow.headers["Retry-After"] == "5"
    assert "held" in overflow.json()["error"]
    assert timed_out.status_code == 503
    assert "in time" in timed_out.json()["error"]


def test_a_client_that_leaves_before_its_request_line_wakes_nothing(tmp_path: Path) -> None:
    spec, _ = sleepy(tmp_path)
    with RuntimeProcess(spec) as runtime:
        runtime.wait_for(lambda: asleep(runtime), what="the API asleep")
        with socket.create_connection(("127.0.0.1", runtime.port)) as client:
            client.sendall(b"POS")  # half a request line, then gone
        probe = runtime.get("/healthz")

        assert probe.status_code == 200
        assert asleep(runtime)
