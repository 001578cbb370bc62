"""HTTP abuse against a real runtime process: slowloris, huge heads, silent connections and the
connection cap. Normal requests keep getting 200s; every abuser is answered or closed."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from cortex.contracts import Flag, Metric
from tests.reliability.conftest import Figures
from tests.runtime import rawhttp
from tests.runtime.harness import RuntimeProcess, write_spec

Size = Callable[[Any, Any], Any]


def refused(rt: RuntimeProcess, reason: str) -> float:
    text = rt.get("/metrics").text
    found = re.search(rf'{Metric.REFUSED_CONNECTIONS}_total{{.*reason="{reason}"}} (\S+)', text)
    assert found, text
    return float(found[1])


def normal_requests(rt: RuntimeProcess, count: int) -> list[int]:
    """``count`` predictions, each on a new connection as most clients make them."""
    return [rt.post(json={"n": i}).status_code for i in range(count)]


@contextmanager
def dribbling(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections sending a request head a byte a second, until the server closes
    them or the block ends."""
    stop = threading.Event()
    with ExitStack() as stack:
        socks = [stack.enter_context(rawhttp.connect(port)) for _ in range(count)]
        for sock in socks:
            rawhttp.send(sock, b"POST /predict HTTP/1.1\r\nhost: test\r\nx-slow: ")

        def drip() -> None:
            while not stop.wait(1.0):
                for sock in socks:
                    rawhttp.send(sock, b"z")

        thread = threading.Thread(target=drip, daemon=True)
        thread.start()
        try:
            yield socks
        finally:
            stop.set()
            thread.join()


def test_slowloris_does_not_stop_normal_requests(
    tmp_path: Path, size: Size, figures: Figures
) -> None:
    # Two workers: the idle connections also weigh on the least-connections choice.
    spec = write_spec(tmp_path, "echo.py", predictor={"processes_per_replica": 2})
    slow, normal = size(50, 200), size(30, 200)
    with RuntimeProcess(spec) as rt, dribbling(rt.port, slow) as socks:  # default deadline: 10s
        statuses = normal_requests(rt, normal)
        held_meanwhile = refused(rt, "header_timeout") == 0
        answers = [rawhttp.read_answer(sock) for sock in socks]
        timed_out = refused(rt, "header_timeout")
    lost = sum(status != 200 for status in statuses)
    figures.record(
        "normal requests during slowloris", sent=normal, lost=lost, slow_connections=slow
    )
    assert statuses == [200] * normal
    assert held_meanwhile, "slow connections were closed before the normal requests were done"
    assert [a.status if a else None for a in answers] == [408] * slow
    assert timed_out == slow


def test_huge_heads_are_refused_and_the_runtime_keeps_serving(
    tmp_path: Path, figures: Figures
) -> None:
    with RuntimeProcess(write_spec(tmp_path, "echo.py")) as rt:  # the default limits
        header = rawhttp.request(headers=[("x-big", "v" * (16 << 20))])
        many = rawhttp.request()[:-2] + b"h:v\r\n" * 10_000 + b"\r\n"  # 50 KB
        long_url = rawhttp.request(path="/healthz?" + "q" * (1 << 20))
        answers = [rawhttp.exchange(rt.port, data) for data in (header, many, long_url)]
        after = rt.post(json={"still": "serving"}).status_code
        counts = [refused(rt, reason) for reason in ("header_bytes", "header_count", "url_bytes")]
    statuses = [a.status if a else None for a in answers]
    figures.record("oversized heads (16 MiB header, 10,000 headers, 1 MiB URL)", sent=3, lost=0)
    assert statuses[0] in (431, None)  # closed before the client could read the answer
    assert statuses[1:] == [431, 414]
    assert all(set(a.json()) == {"error", "request_id"} for a in answers if a)
    assert counts == [1, 1, 1]
    assert after == 200


def test_silent_and_idle_connections_are_closed_after_their_deadlines(
    tmp_path: Path, size: Size, figures: Figures
) -> None:
    silent_count, idle_count = size(50, 200), size(20, 100)
    deadlines = (Flag.HEADER_TIMEOUT, "2", Flag.KEEP_ALIVE_TIMEOUT, "2")
    with RuntimeProcess(write_spec(tmp_path, "echo.py"), *deadlines) as rt, ExitStack() as stack:
        silent = [stack.enter_context(rawhttp.connect(rt.port)) for _ in range(silent_count)]
        idle = [stack.enter_context(rawhttp.connect(rt.port)) for _ in range(idle_count)]
        for sock in idle:
            rawhttp.send(sock, rawhttp.request())
        served = [rawhttp.read_answer(sock) for sock in idle]
        closed = [rawhttp.closed_by_server(sock) for sock in silent + idle]
        counts = refused(rt, "header_timeout"), refused(rt, "idle")
    left_open = closed.count(False)
    figures.record(
        "silent and idle connections closed", sent=silent_count + idle_count, lost=left_open
    )
    assert [a.status if a else None for a in served] == [200] * idle_count
    assert left_open == 0
    assert counts == (silent_count, idle_count)


def test_beyond_the_connection_cap_requests_are_503_then_served_again(
    tmp_path: Path, size: Size, figures: Figures
) -> None:
    cap, extra = 20, size(20, 200)
    with RuntimeProcess(write_spec(tmp_path, "echo.py"), Flag.MAX_CONNECTIONS, str(cap)) as rt:
        with ExitStack() as stack:
            for sock in rawhttp.hold(rt.port, cap):
                stack.enter_context(sock)
            over = [rawhttp.exchange(rt.port, rawhttp.request("POST", "/predict", body=b"{}"))]
            over += [rawhttp.exchange(rt.port, rawhttp.request()) for _ in range(extra - 1)]
        rt.wait_for(lambda: rt.post(json={}).status_code == 200, what="a 200 under the cap")
        after = normal_requests(rt, 10)
        counted = refused(rt, "connections")
    statuses = [a.status if a else None for a in over]
    figures.record("connections beyond the cap", sent=extra, lost=statuses.count(None), cap=cap)
    assert statuses == [503] * extra
    assert all(a.headers["retry-after"] == "1" for a in over if a)
    assert after == [200] * 10
    assert counted >= extra
