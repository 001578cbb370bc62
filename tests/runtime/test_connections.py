"""HTTP limits of a real runtime process, over raw sockets: the head's size, header count and
URL length, slow and idle connections, the connection cap, each answered and counted."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cortex.contracts import Flag, Metric
from tests.runtime import rawhttp
from tests.runtime.harness import RuntimeProcess, write_spec

pytestmark = pytest.mark.slow

HEAD_LIMIT = 4096
HEADERS_LIMIT = 20
URL_LIMIT = 1024
TIMEOUT = 1.5  # the head deadline and the keep-alive timeout


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    spec = write_spec(tmp_path_factory.mktemp("limits"), "echo.py")
    limits = [
        *(Flag.MAX_HEADER_BYTES, str(HEAD_LIMIT), Flag.MAX_HEADERS, str(HEADERS_LIMIT)),
        *(Flag.MAX_URL_BYTES, str(URL_LIMIT), Flag.HEADER_TIMEOUT, str(TIMEOUT)),
        *(Flag.KEEP_ALIVE_TIMEOUT, str(TIMEOUT)),
    ]
    with RuntimeProcess(spec, *limits) as process:
        yield process


def refused(rt: RuntimeProcess, reason: str) -> float:
    text = rt.get("/metrics").text
    found = re.search(rf'{Metric.REFUSED_CONNECTIONS}_total{{.*reason="{reason}"}} (\S+)', text)
    assert found, text
    return float(found[1])


def head_of(size: int, rid: str = "limit-test") -> bytes:
    """A GET /healthz whose head (request line, headers, blank line) is ``size`` bytes."""
    bare = rawhttp.request(headers=[("x-request-id", rid), ("x-pad", "")])
    return bare[:-4] + b"p" * (size - len(bare)) + b"\r\n\r\n"


def test_a_head_at_the_byte_limit_is_served_and_one_byte_more_is_431(rt: RuntimeProcess) -> None:
    before = refused(rt, "header_bytes")
    at_limit = rawhttp.exchange(rt.port, head_of(HEAD_LIMIT))
    over = rawhttp.exchange(rt.port, head_of(HEAD_LIMIT + 1))
    assert at_limit is not None and at_limit.status == 200
    assert over is not None and over.status == 431
    assert over.headers["connection"] == "close"
    assert over.json() == {
        "error": f"the request head is larger than the limit of {HEAD_LIMIT} bytes",
        "request_id": "limit-test",
    }
    assert refused(rt, "header_bytes") == before + 1


def test_a_head_dribbled_over_many_reads_is_measured_whole(rt: RuntimeProcess) -> None:
    data = head_of(HEAD_LIMIT * 2)
    with rawhttp.connect(rt.port) as sock:
        for at in range(0, len(data), 500):
            if not rawhttp.send(sock, data[at : at + 500]):
                break
        answer = rawhttp.read_answer(sock)
    assert answer is not None and answer.status == 431


def test_pipelined_requests_are_each_measured_on_their_own(rt: RuntimeProcess) -> None:
    size = HEAD_LIMIT * 3 // 4
    with rawhttp.connect(rt.port) as sock:
        rawhttp.send(sock, head_of(size) + head_of(size))
        answers = [rawhttp.read_answer(sock), rawhttp.read_answer(sock)]
    assert [a.status if a else None for a in answers] == [200, 200]


def test_more_headers_than_the_limit_is_431(rt: RuntimeProcess) -> None:
    before = refused(rt, "header_count")
    extra = [(f"x-{i}", "v") for i in range(HEADERS_LIMIT)]
    at_limit = rawhttp.exchange(rt.port, rawhttp.request(headers=extra[:-1]))  # + host
    over = rawhttp.exchange(rt.port, rawhttp.request(headers=extra))
    assert at_limit is not None and at_limit.status == 200
    assert over is not None and over.status == 431
    assert over.json()["error"] == f"the request has more than the limit of {HEADERS_LIMIT} headers"
    assert refused(rt, "header_count") == before + 1


def test_a_url_over_the_limit_is_414(rt: RuntimeProcess) -> None:
    before = refused(rt, "url_bytes")
    at_limit = rawhttp.exchange(rt.port, rawhttp.request(path="/healthz?" + "q" * (URL_LIMIT - 9)))
    over = rawhttp.exchange(rt.port, rawhttp.request(path="/healthz?" + "q" * (URL_LIMIT - 8)))
    assert at_limit is not None and at_limit.status == 200
    assert over is not None and over.status == 414
    assert set(over.json()) == {"error", "request_id"}
    assert refused(rt, "url_bytes") == before + 1


def test_a_head_that_stalls_is_408_and_a_silent_connection_is_closed(rt: RuntimeProcess) -> None:
    before = refused(rt, "header_timeout")
    with rawhttp.connect(rt.port) as stalled, rawhttp.connect(rt.port) as silent:
        rawhttp.send(stalled, b"GET /healthz HTTP/1.1\r\nhost: te")
        answer = rawhttp.read_answer(stalled)
        assert rawhttp.closed_by_server(silent)
    assert answer is not None and answer.status == 408
    assert answer.json()["error"] == f"the request head did not arrive within {TIMEOUT:g}s"
    assert refused(rt, "header_timeout") == before + 2


def test_an_idle_keep_alive_connection_is_closed_after_its_timeout(rt: RuntimeProcess) -> None:
    before = refused(rt, "idle")
    with rawhttp.connect(rt.port) as sock:
        rawhttp.send(sock, rawhttp.request())
        first = rawhttp.read_answer(sock)
        rawhttp.send(sock, rawhttp.request())  # still open between requests
        second = rawhttp.read_answer(sock)
        assert rawhttp.closed_by_server(sock)
    assert first is not None and second is not None and second.status == 200
    assert refused(rt, "idle") == before + 1


def test_an_http_client_reads_a_refusal_as_a_json_error(rt: RuntimeProcess) -> None:
    headers = {f"x-{i}": "v" for i in range(HEADERS_LIMIT + 1)}
    r = httpx.get(rt.base + "/healthz", headers=headers, timeout=30)
    assert r.status_code == 431
    assert r.json()["request_id"] == r.headers["x-request-id"]


def test_bytes_that_are_not_http_are_a_400_json_error(rt: RuntimeProcess) -> None:
    before = refused(rt, "malformed")
    answer = rawhttp.exchange(rt.port, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert answer is not None and answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == "the request is not valid HTTP"
    assert refused(rt, "malformed") == before + 1


def test_beyond_the_connection_cap_a_request_is_503_with_retry_after(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py")
    with RuntimeProcess(spec, Flag.MAX_CONNECTIONS, "3") as rt:
        held = rawhttp.hold(rt.port, 3)
        over = rawhttp.exchange(rt.port, rawhttp.request("POST", "/predict", body=b"{}"))
        for sock in held:
            sock.close()
        rt.wait_for(lambda: rt.post(json={}).status_code == 200, what="a 200 under the cap")
        count = refused(rt, "connections")
    assert over is not None and over.status == 503
    assert over.headers["retry-after"] == "1" and over.headers["connection"] == "close"
    assert over.json()["error"] == "this process has 3 connections open; retry"
    assert count >= 1  # more when a held one met the cap before an earlier close was seen


def test_out_of_file_descriptors_the_worker_pauses_accepting_then_serves(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py")
    limited = ["sh", "-c", 'ulimit -n 100 && exec "$0" "$@"', sys.executable, "-m"]
    command = [*limited, "cortex.runtime", Flag.SPEC, str(spec)]
    with RuntimeProcess(spec, command=command) as rt:
        flood = [rawhttp.connect(rt.port) for _ in range(150)]
        rt.wait_for(lambda: "cannot accept a connection" in rt.output(), what="EMFILE")
        for sock in flood:
            sock.close()
        rt.wait_for(lambda: rt.post(json={}).status_code == 200, what="a 200 after the flood")


def test_the_open_file_limit_is_raised_to_the_hard_limit(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py")
    soft_only = ["sh", "-c", 'ulimit -Sn 256 && exec "$0" "$@"', sys.executable, "-m"]
    with RuntimeProcess(spec, command=[*soft_only, "cortex.runtime", Flag.SPEC, str(spec)]) as rt:
        limits = Path(f"/proc/{rt.proc.pid}/limits").read_text()
    soft, hard = re.search(r"Max open files\s+(\S+)\s+(\S+)", limits).groups()  # type: ignore[union-attr]
    if hard in ("256", "unlimited"):
        pytest.skip(f"the hard limit here is {hard}: nothing to raise to")
    assert soft == hard


@pytest.mark.parametrize("flag", [Flag.MAX_HEADERS, Flag.HEADER_TIMEOUT, Flag.MAX_CONNECTIONS])
def test_a_limit_must_be_above_zero(tmp_path: Path, flag: Flag) -> None:
    spec = write_spec(tmp_path, "echo.py")
    with RuntimeProcess(spec, flag, "0", wait=False) as rt:
        code = rt.exit_code()
    assert code == 2
    assert f"argument {flag}: must be above 0, not 0" in rt.output()
