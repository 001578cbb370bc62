"""Misbehaving predictors and clients against a real runtime: timeouts, hung threads, bodies
that never end, dying workers, a dying master."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.runtime.harness import RuntimeProcess, alive, listening, raw_post, state, write_spec

pytestmark = pytest.mark.slow

ABANDONED = 'cortex_abandoned_threads{api_name="proc-api"}'
IN_FLIGHT = "cortex_in_flight_requests"


def hung(tmp_path: Path, path: str = "hangs.py", timeout: str = "1s", **predictor: object) -> Path:
    gate = tmp_path / "gate"
    record = tmp_path / "record"
    config = {"gate": str(gate)} if path == "hangs.py" else {"record": str(record)}
    return write_spec(
        tmp_path,
        path,
        predictor={"config": config, **predictor},
        networking={"timeout": timeout},
    )


def test_a_prediction_past_the_timeout_is_answered_504_with_the_json_error(tmp_path: Path) -> None:
    with RuntimeProcess(hung(tmp_path)) as rt:
        started = time.monotonic()
        reply = rt.post(headers={"x-request-id": "late-1"})
        waited = time.monotonic() - started
        in_flight = rt.metric(IN_FLIGHT)
        timeouts = rt.metric('cortex_request_timeouts_total{api_name="proc-api"}')
    assert reply.status_code == 504
    assert reply.json() == {
        "error": "the prediction did not answer within networking.timeout (1s)",
        "request_id": "late-1",
    }
    assert reply.headers["x-request-id"] == "late-1"
    assert waited >= 1.0
    assert in_flight == 0  # its slot was freed with the answer
    assert timeouts == 1


def test_a_predict_that_raises_is_a_500_with_the_json_error_and_holds_no_slot(
    tmp_path: Path,
) -> None:
    spec = write_spec(tmp_path, "raises.py", autoscaling={"max_replica_concurrency": 1})
    with RuntimeProcess(spec) as rt:
        replies = [rt.post(json=i, headers={"x-request-id": f"r{i}"}) for i in range(3)]
        in_flight = rt.metric(IN_FLIGHT)
    assert [r.status_code for r in replies] == [500] * 3  # the cap is 1: each slot came back
    assert replies[2].json() == {"error": "ValueError: cannot predict 2", "request_id": "r2"}
    assert in_flight == 0
    assert "predict failed: ValueError (message withheld" in rt.output()  # it may hold payload
    assert "cannot predict 0" not in rt.output()


def test_a_hung_sync_thread_is_counted_and_readiness_drops_until_every_one_returns(
    tmp_path: Path,
) -> None:
    spec = hung(tmp_path, threads_per_process=2)
    with RuntimeProcess(spec) as rt, ThreadPoolExecutor(2) as pool:
        first = rt.post()
        assert first.status_code == 504
        half = (rt.metric(ABANDONED), rt.get("/readyz").status_code)
        second = pool.submit(rt.post).result()
        assert second.status_code == 504
        rt.wait_for(lambda: rt.metric(ABANDONED) == 2, what="2 abandoned threads")
        stuck = rt.get("/readyz")
        (tmp_path / "gate").touch()
        rt.wait_for(lambda: rt.metric(ABANDONED) == 0, what="the threads back")
        back = rt.get("/readyz").status_code
        answered = rt.post(params={"hang": "0"}).status_code
    assert half == (1, 200)  # one thread is still free
    assert stuck.status_code == 503
    assert "every predict thread (2 per process) is stuck" in stuck.json()["reason"]
    assert (back, answered) == (200, 200)


def test_an_async_prediction_past_the_timeout_is_cancelled(tmp_path: Path) -> None:
    with RuntimeProcess(hung(tmp_path, "hangs_async.py")) as rt:
        reply = rt.post()
        rt.wait_for(lambda: (tmp_path / "record").exists(), what="the cancellation")
        abandoned = rt.metric(ABANDONED)
    assert reply.status_code == 504
    assert (tmp_path / "record").read_text() == "cancelled\n"
    assert abandoned == 0  # nothing keeps running


def test_a_client_that_leaves_cancels_its_async_prediction_and_frees_its_slot(
    tmp_path: Path,
) -> None:
    spec = write_spec(
        tmp_path,
        "hangs_async.py",
        predictor={"config": {"record": str(tmp_path / "record")}},
        autoscaling={"max_replica_concurrency": 1, "target_replica_concurrency": 1},
    )  # the default timeout, 300s: only the client's leaving ends the call
    with RuntimeProcess(spec) as rt:
        client = raw_post(rt.port)
        rt.wait_for(lambda: rt.metric(IN_FLIGHT) == 1, what="1 in flight")
        client.close()
        rt.wait_for(lambda: (tmp_path / "record").exists(), what="the cancellation")
        rt.wait_for(lambda: rt.metric(IN_FLIGHT) == 0, what="the slot back")
        after = rt.post(params={"hang": "0"}).status_code
    assert after == 200


def test_a_started_stream_is_not_cut_by_the_timeout(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "stream.py", networking={"timeout": "500ms"})
    with RuntimeProcess(spec) as rt:
        reply = httpx.post(rt.base + "/predict", params={"n": "12", "sleep": "0.1"}, timeout=30)
    assert reply.status_code == 200
    assert reply.text.startswith("token 0")
    assert '{"i":11}' in reply.text  # 1.2 s of chunks, past the 0.5 s timeout


def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_holds_no_slot(
    tmp_path: Path,
) -> None:
    spec = write_spec(
        tmp_path,
        "echo.py",
        autoscaling={"max_replica_concurrency": 1, "target_replica_concurrency": 1},
    )
    with RuntimeProcess(spec, "--body-timeout", "1") as rt:
        client = raw_post(rt.port, head="content-type: application/json\r\ncontent-length: 10\r\n")
        client.sendall(b"{")
        meanwhile = rt.post(json={"a": 1}).status_code  # the cap is 1: the stuck body holds none
        answer = b"".join(iter(lambda: client.recv(65536), b"")).decode()  # until it closes
        client.close()
        counted = rt.metric('cortex_body_timeouts_total{api_name="proc-api"}')
    assert meanwhile == 200
    assert answer.startswith("HTTP/1.1 408 ")
    assert '"error":"the request body did not arrive within 1s"' in answer
    assert counted == 1


def test_a_replica_that_admits_nothing_for_the_timeout_reports_not_ready(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "hangs_async.py",
        predictor={"processes_per_replica": 2, "config": {"record": str(tmp_path / "record")}},
        autoscaling={"max_replica_concurrency": 1, "target_replica_concurrency": 1},
        networking={"timeout": "1s"},
    )
    with RuntimeProcess(spec) as rt, ThreadPoolExecutor(1) as pool:
        # An async predict that blocks its event loop: its timeout cannot fire, its slot stays.
        blocked = pool.submit(rt.post, params={"block": "8"})
        # Only then ask the other worker: one the blocked worker took before would wait it out.
        rt.wait_for(lambda: (tmp_path / "record").exists(), what="a blocked event loop")
        rt.wait_for(lambda: rt.get("/readyz").status_code == 503, what="readiness 503")
        stalled = rt.get("/readyz").json()
        answered = blocked.result().status_code
        rt.wait_for(lambda: rt.get("/readyz").status_code == 200, what="readiness back")
    assert "none admitted or finished for networking.timeout (1s)" in stalled["reason"]
    assert answered == 200  # it returned before anything checked its deadline


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("exit", "exited with exit code 3"),
        ("segv", "crashed: segfault (SIGSEGV)"),
        ("kill", "was killed by SIGKILL (out of memory?)"),
    ],
)
def test_a_worker_dying_mid_request_is_replaced_the_others_serve_and_the_log_says_how(
    tmp_path: Path, how: str, said: str
) -> None:
    spec = write_spec(tmp_path, "crashes.py", predictor={"processes_per_replica": 2})
    with RuntimeProcess(spec) as rt:
        before = set(rt.workers())
        with pytest.raises(httpx.TransportError):  # the kernel closes its connection
            rt.post(params={"how": how})
        ready_meanwhile = rt.get("/readyz").status_code  # answered by the other worker
        served = {rt.post().status_code for _ in range(4)}
        rt.wait_for(lambda: len(set(rt.workers()) - before) == 1, what="a replacement")
        in_flight = rt.metric(IN_FLIGHT)
        (dead,) = before - set(rt.workers())
    assert ready_meanwhile == 200
    assert served == {200}
    assert in_flight == 0  # the slot it held came back
    assert f"worker {dead} (slot " in rt.output()
    assert f"{said} with 1 request(s) in flight; starting a new one in 0s" in rt.output()


def test_workers_die_with_a_sigkilled_master_even_with_a_hung_request(tmp_path: Path) -> None:
    spec = hung(tmp_path, processes_per_replica=2, timeout="300s")
    with RuntimeProcess(spec) as rt:
        client = raw_post(rt.port)
        rt.wait_for(lambda: rt.metric(IN_FLIGHT) == 1, what="1 in flight")
        workers, port = rt.workers(), rt.port
        rt.proc.kill()
        rt.proc.wait()
        deadline = time.monotonic() + 3  # "within a second", on a loaded machine
        while (any(map(alive, workers)) or listening(port)) and time.monotonic() < deadline:
            time.sleep(0.02)  # the kernel closes a dead process's sockets soon after
        left = [(pid, state(pid)) for pid in workers if alive(pid)]
        client.close()
    assert len(workers) == 2
    assert left == []
    assert not listening(port)  # nobody holds the port any more


def test_a_reload_while_requests_hang_leaves_no_old_worker_past_the_timeout(
    tmp_path: Path,
) -> None:
    spec = hung(tmp_path, threads_per_process=2)
    with RuntimeProcess(spec) as rt, ThreadPoolExecutor(2) as pool:
        (old,) = rt.workers()
        calls = [pool.submit(rt.post) for _ in range(2)]
        rt.wait_for(lambda: rt.metric(IN_FLIGHT) == 2, what="2 in flight")
        spec.write_text(spec.read_text().replace("process: 2", "process: 3"))  # threads
        rt.proc.send_signal(signal.SIGHUP)
        codes = [call.result().status_code for call in calls]
        rt.wait_for(lambda: not alive(old), timeout=10, what="the old worker gone")
        after = rt.post(params={"hang": "0"}).status_code
    assert codes == [504, 504]
    assert after == 200
