"""The runtime under load as a real process: admission, in-flight, processes, drain, reload."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.runtime.harness import RuntimeProcess, write_spec

pytestmark = pytest.mark.slow


def test_overload_returns_503_with_retry_after_while_in_flight_requests_complete(
    tmp_path: Path,
) -> None:
    spec = write_spec(
        tmp_path,
        "slow.py",
        predictor={"threads_per_process": 2, "config": {"seconds": 1.5}},
        autoscaling={"max_replica_concurrency": 2, "target_replica_concurrency": 1},
    )
    with RuntimeProcess(spec) as rt, ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(rt.post) for _ in range(2)]
        rt.wait_for(lambda: rt.metric("cortex_in_flight_requests") == 2, what="2 in flight")
        started = time.monotonic()
        rejected = rt.post()
        rejected_in = time.monotonic() - started
        answers = [f.result() for f in slow]
        after = rt.post(params={"sleep": "0"})
        counted = rt.metric('cortex_rejected_requests_total{api_name="proc-api"}')
    assert rejected.status_code == 503
    assert rejected.headers["retry-after"] == "1"
    assert "too many requests in flight" in rejected.json()["error"]
    assert rejected_in < 1.0  # answered at once, not queued behind the slow ones
    assert [a.status_code for a in answers] == [200, 200]
    assert after.status_code == 200
    assert counted == 1  # the dashboard's "503s from admission"


def test_in_flight_gauge_counts_requests_across_two_processes(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "slow.py",
        predictor={"processes_per_replica": 2, "threads_per_process": 2, "config": {"seconds": 2}},
    )
    with RuntimeProcess(spec) as rt, ThreadPoolExecutor(3) as pool:
        calls = [pool.submit(rt.post) for _ in range(3)]
        rt.wait_for(lambda: rt.metric("cortex_in_flight_requests") == 3, what="3 in flight")
        pids = {f.result().json()["pid"] for f in calls}
        rt.wait_for(lambda: rt.metric("cortex_in_flight_requests") == 0, what="0 in flight")
        total = rt.metric('cortex_requests_total{api_name="proc-api",status_code="2XX"}')
    assert len(pids) == 2  # both processes served: the gauge summed them
    assert total == 3


def test_requests_spread_over_processes(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, "slow.py", predictor={"processes_per_replica": 2, "config": {"seconds": 0.05}}
    )
    with RuntimeProcess(spec) as rt, ThreadPoolExecutor(8) as pool:
        pids = list(pool.map(lambda _: rt.post().json()["pid"], range(40)))
    counts = sorted(pids.count(pid) for pid in set(pids))
    assert len(counts) == 2
    assert counts[0] >= 8, counts  # no process idles while the other one queues


def test_sigterm_under_load_finishes_every_in_flight_request_and_exits_0(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, "slow.py", predictor={"threads_per_process": 4, "config": {"seconds": 1}}
    )
    with RuntimeProcess(spec) as rt, ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(rt.post) for _ in range(8)]
        rt.wait_for(lambda: rt.metric("cortex_in_flight_requests") == 8, what="8 in flight")
        rt.proc.send_signal(signal.SIGTERM)
        codes = [f.result().status_code for f in calls]
        assert rt.proc.wait(30) == 0
        with pytest.raises(httpx.ConnectError):
            rt.post()
    assert codes == [200] * 8
    assert "drained; exiting" in rt.output()


def test_readiness_turns_503_as_soon_as_draining_starts(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "slow.py", predictor={"config": {"seconds": 2}})
    with RuntimeProcess(spec, "--drain-grace", "1") as rt, ThreadPoolExecutor(1) as pool:
        call = pool.submit(rt.post)
        rt.wait_for(lambda: rt.metric("cortex_in_flight_requests") == 1, what="1 in flight")
        rt.proc.send_signal(signal.SIGTERM)
        rt.wait_for(lambda: rt.get("/readyz").status_code == 503, what="readiness 503")
        assert rt.get("/readyz").json()["status"] == "draining"
        assert call.result().status_code == 200
        assert rt.proc.wait(30) == 0


def test_a_dead_worker_is_replaced_waiting_longer_when_it_keeps_dying(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "slow.py", predictor={"config": {"seconds": 0}})
    with RuntimeProcess(spec) as rt:
        pids = [rt.post().json()["pid"]]
        for _ in range(2):
            with pytest.raises(httpx.TransportError):
                rt.post(params={"crash": "1"})
            rt.wait_for(lambda: rt.post().status_code == 200, what="a new worker")
            pids.append(rt.post().json()["pid"])
    assert len(set(pids)) == 3
    said = "exited with exit code 3 with 1 request(s) in flight; starting a new one in"
    assert f"{said} 0s" in rt.output()
    assert f"{said} 1s" in rt.output()  # the second, within 60 s


def test_sighup_reloads_the_spec_with_no_failed_request(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py", predictor={"config": {"v": 1}})
    with RuntimeProcess(spec) as rt:
        old_hash = rt.status()["spec_hash"]
        failures, versions, stop = [], set(), threading.Event()

        def client() -> None:  # one keep-alive connection, requests back to back
            with httpx.Client(base_url=rt.base, timeout=10) as http:
                while not stop.is_set():
                    try:
                        r = http.post("/predict", json={})
                        versions.add(r.json()["config"]["v"]) if r.status_code == 200 else (
                            failures.append(r.status_code)
                        )
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        loop = threading.Thread(target=client)
        loop.start()
        time.sleep(0.3)
        spec.write_text(spec.read_text().replace("v: 1", "v: 2"))
        rt.proc.send_signal(signal.SIGHUP)
        rt.wait_for(lambda: rt.status()["spec_hash"] != old_hash, what="the new spec")
        rt.wait_for(lambda: 2 in versions, what="answers from the new spec")
        time.sleep(1)  # the old process drains while the client keeps going
        stop.set()
        loop.join()
    assert failures == []
    assert versions == {1, 2}
    assert rt.status()["state"] == "draining"  # stopped by the harness at the end


def test_a_reload_whose_predictor_fails_keeps_the_old_one_serving(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py", predictor={"config": {"v": 1}})
    (tmp_path / "init_fails.py").write_text(
        (spec.parent / "echo.py")
        .read_text()
        .replace("self.config = config", "raise RuntimeError('broken weights')")
    )
    with RuntimeProcess(spec) as rt:
        old_hash = rt.status()["spec_hash"]
        spec.write_text(spec.read_text().replace("echo.py", "init_fails.py"))
        rt.proc.send_signal(signal.SIGHUP)
        rt.wait_for(lambda: rt.status()["cause"] is not None, what="a reload error")
        status = rt.status()
        answer = rt.post(json={})
    assert status["state"] == "ready"
    assert status["spec_hash"] == old_hash
    # Ready with a cause: the reload failed and the old version keeps serving.
    assert status["cause"] == "predictor __init__ raised RuntimeError: broken weights"
    assert answer.json()["config"] == {"v": 1}
    assert "broken weights; the old version keeps serving" in rt.output()


def test_inits_of_several_processes_are_staggered(tmp_path: Path) -> None:
    record = tmp_path / "inits.txt"
    spec = write_spec(
        tmp_path,
        "stagger.py",
        predictor={"processes_per_replica": 3, "config": {"record": str(record)}},
    )
    with RuntimeProcess(spec):
        spans = sorted(tuple(map(float, line.split())) for line in record.read_text().splitlines())
    assert len(spans) == 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # one __init__ at a time: N copies of a model never load at once
