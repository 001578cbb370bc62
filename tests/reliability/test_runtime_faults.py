"""Faults inside one replica: workers that die mid-request, bodies that never end, hung
predictions, clients that give up, a master killed with SIGKILL. Each case ends by checking the
replica is whole again (the full concurrency cap admits and answers) and records its figures.

Worker crashes are replaced with the runtime's backoff (0 s, 1 s, 2 s, 5 s, 10 s, then 30 s
while they keep coming within a minute): the short form crashes 3 in a row per kind, the long
form 20, which takes about 3 minutes per kind.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import Figures
from tests.runtime.harness import RuntimeProcess, alive, listening, raw_post, state, write_spec

Size = Callable[[Any, Any], Any]
IN_FLIGHT = "cortex_in_flight_requests"
ABANDONED = 'cortex_abandoned_threads{api_name="proc-api"}'


def cap(limit: int) -> dict[str, int]:
    return {"max_replica_concurrency": limit, "target_replica_concurrency": 1}


def full_capacity(rt: RuntimeProcess, limit: int, **params: str) -> list[int]:
    """Status codes of ``limit`` requests sent at once (all 200 when no slot leaked)."""
    with ThreadPoolExecutor(limit) as pool:
        return list(pool.map(lambda _: rt.post(params=params).status_code, range(limit)))


@pytest.mark.timeout(1200)  # the long form: 20 crashes took 3 minutes of backoff here
@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("exit", "exited with exit code 3"),
        ("segv", "crashed: segfault (SIGSEGV)"),
        ("kill", "was killed by SIGKILL (out of memory?)"),
    ],
)
def test_worker_crashes_in_a_row_leave_the_full_capacity(
    tmp_path: Path, figures: Figures, size: Size, how: str, said: str
) -> None:
    crashes, limit = size(3, 20), 4
    spec = write_spec(
        tmp_path,
        "crashes.py",
        predictor={"processes_per_replica": 2, "threads_per_process": 2},
        autoscaling=cap(limit),
    )
    with RuntimeProcess(spec) as rt:
        for _ in range(crashes):
            with pytest.raises(httpx.TransportError):
                httpx.post(rt.base + "/predict", params={"how": how}, timeout=120)
        rt.wait_for(lambda: len(rt.workers()) == 2, timeout=120, what="2 workers")
        rt.wait_for(lambda: rt.metric(IN_FLIGHT) == 0, what="no slot held")
        codes = full_capacity(rt, limit, sleep="0.5")
        logged = rt.output().count(f"{said} with 1 request(s) in flight")
    lost = sum(code != 200 for code in codes)
    figures.record(f"worker crashes in a row ({how})", sent=crashes, lost=lost, capacity=limit)
    assert logged == crashes
    assert codes == [200] * limit


def test_unfinished_bodies_twice_the_cap_leave_normal_requests_answered(
    tmp_path: Path, figures: Figures, size: Size
) -> None:
    limit, normal = 4, size(20, 200)
    spec = write_spec(tmp_path, "echo.py", autoscaling=cap(limit))
    with RuntimeProcess(spec, "--body-timeout", "3") as rt:
        chunked = "content-type: application/json\r\ntransfer-encoding: chunked\r\n"
        short = "content-type: application/json\r\ncontent-length: 100\r\n"
        stuck = [raw_post(rt.port, head=chunked if i % 2 else short) for i in range(2 * limit)]
        for i, sock in enumerate(stuck):
            sock.sendall(b'5\r\n{"a":' if i % 2 else b'{"a": 1')  # and never the rest
        codes = [rt.post(json={"i": i}).status_code for i in range(normal)]
        answers = [_read_all(sock) for sock in stuck]
        counted = rt.metric('cortex_body_timeouts_total{api_name="proc-api"}')
    lost = sum(code != 200 for code in codes)
    figures.record(
        "unfinished bodies (2x the cap) + normal requests",
        sent=normal,
        lost=lost,
        unfinished=len(stuck),
        answered_408=sum(a.startswith("HTTP/1.1 408 ") for a in answers),
    )
    assert codes == [200] * normal
    assert all(a.startswith("HTTP/1.1 408 ") for a in answers), answers
    assert counted == len(stuck)


@pytest.mark.parametrize("path", ["hangs_async.py", "hangs.py"])
def test_abandoned_hung_requests_give_the_capacity_back_within_the_timeout(
    tmp_path: Path, figures: Figures, size: Size, path: str
) -> None:
    clients, threads = size(50, 200), 4
    limit = clients + 14
    config = {"record": str(tmp_path / "record"), "gate": str(tmp_path / "gate")}
    spec = write_spec(
        tmp_path,
        path,
        predictor={"threads_per_process": threads, "config": config},
        autoscaling=cap(limit),
        networking={"timeout": "1s"},
    )
    with RuntimeProcess(spec) as rt:
        socks = [raw_post(rt.port) for _ in range(clients)]
        rt.wait_for(lambda: rt.metric(IN_FLIGHT) == clients, what=f"{clients} in flight")
        for sock in socks:  # the clients give up
            sock.close()
        left = time.monotonic()
        rt.wait_for(lambda: rt.metric(IN_FLIGHT) == 0, timeout=1.5, what="every slot back")
        back_in = time.monotonic() - left
        if path == "hangs.py":  # sync: the threads run on, counted, until their calls return
            rt.wait_for(lambda: rt.metric(ABANDONED) == threads, what="the stuck threads")
            stuck = rt.get("/readyz")
            assert stuck.status_code == 503 and "is stuck" in stuck.json()["reason"]
            (tmp_path / "gate").touch()
            rt.wait_for(lambda: rt.metric(ABANDONED) == 0, what="the threads back")
        ready = rt.get("/readyz").status_code
        codes = full_capacity(rt, limit, hang="0")
    lost = sum(code != 200 for code in codes)
    figures.record(
        f"abandoned hung requests ({path})",
        sent=clients,
        lost=lost,
        slots_back_in_s=round(back_in, 3),
        timeout_s=1,
    )
    assert ready == 200
    assert codes == [200] * limit


def test_hung_requests_are_each_answered_504_with_the_json_error(
    tmp_path: Path, figures: Figures, size: Size
) -> None:
    clients, threads = size(20, 100), 2
    spec = write_spec(
        tmp_path,
        "hangs.py",
        predictor={"threads_per_process": threads, "config": {"gate": str(tmp_path / "gate")}},
        autoscaling=cap(clients),
        networking={"timeout": "1s"},
    )
    with RuntimeProcess(spec) as rt, ThreadPoolExecutor(clients) as pool:
        ids = [f"hung-{i}" for i in range(clients)]
        replies = list(pool.map(lambda rid: rt.post(headers={"x-request-id": rid}), ids))
        abandoned = rt.metric(ABANDONED)
        readiness = rt.get("/readyz").status_code
        (tmp_path / "gate").touch()
        rt.wait_for(lambda: rt.get("/readyz").status_code == 200, what="ready again")
    expected = "the prediction did not answer within networking.timeout (1s)"
    right = [
        r.status_code == 504 and r.json() == {"error": expected, "request_id": rid}
        for r, rid in zip(replies, ids, strict=True)
    ]
    figures.record(
        "hung requests past networking.timeout",
        sent=clients,
        lost=right.count(False),
        answered_504=right.count(True),
    )
    assert all(right)
    assert abandoned == threads  # the rest never started: skipped once their request ended
    assert readiness == 503


def test_a_sigkilled_master_leaves_no_process_or_port(
    tmp_path: Path, figures: Figures, size: Size
) -> None:
    kills, left = size(1, 5), list[str]()
    for i in range(kills):
        folder = tmp_path / str(i)
        folder.mkdir()
        spec = write_spec(
            folder,
            "hangs.py",
            predictor={"processes_per_replica": 2, "config": {"gate": str(folder / "gate")}},
        )
        with RuntimeProcess(spec) as rt:
            client = raw_post(rt.port)  # a hung request: the workers must not wait for it
            rt.wait_for(lambda: rt.metric(IN_FLIGHT) == 1, what="1 in flight")
            workers, port = rt.workers(), rt.port
            rt.proc.send_signal(signal.SIGKILL)
            rt.proc.wait()
            deadline = time.monotonic() + 2  # the kernel closes a dead process's sockets soon
            while (any(map(alive, workers)) or listening(port)) and time.monotonic() < deadline:
                time.sleep(0.02)
            left += [f"worker {pid} ({state(pid)})" for pid in workers if alive(pid)]
            client.close()
            if listening(port):  # an orphan holds the port
                left.append(f"port {port}")
    figures.record("master SIGKILLed with a hung request", sent=kills, lost=len(left))
    assert left == []


def _read_all(sock: socket.socket) -> str:
    """What the server sends until it closes the connection."""
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode(errors="replace")
