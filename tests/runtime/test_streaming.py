"""Streaming: a generator predict streams SSE or chunks; a disconnect stops the generator."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.runtime.harness import RuntimeProcess, write_spec

pytestmark = pytest.mark.slow


@pytest.fixture(params=["stream.py", "async_stream.py"])
def streamer(request: pytest.FixtureRequest, tmp_path: Path):
    marker = tmp_path / "marker"
    spec = write_spec(tmp_path, request.param, predictor={"config": {"marker": str(marker)}})
    with RuntimeProcess(spec) as rt:
        rt.marker = marker  # type: ignore[attr-defined]
        yield rt


def test_sse_when_the_client_accepts_event_stream(streamer: RuntimeProcess) -> None:
    reply = streamer.post(params={"n": "3"}, headers={"accept": "text/event-stream"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.headers["cache-control"] == "no-cache"
    assert reply.text.startswith("data: token 0\n\n")
    assert reply.text.endswith("data: token 2\n\n")
    assert reply.text.count("data: ") == 3


def test_chunked_stream_otherwise(streamer: RuntimeProcess) -> None:
    chunks = []
    with httpx.stream("POST", streamer.base + "/predict", params={"n": "3"}) as reply:
        assert reply.headers["transfer-encoding"] == "chunked"
        chunks = list(reply.iter_raw())
    body = b"".join(chunks)
    assert body.startswith(b"token 0")
    assert body.endswith(b"token 2")


def test_client_disconnect_stops_the_generator(streamer: RuntimeProcess) -> None:
    marker: Path = streamer.marker  # type: ignore[attr-defined]
    with httpx.stream("POST", streamer.base + "/predict", params={"sleep": "0.05"}) as reply:
        stream = reply.iter_raw()
        next(stream)
        next(stream)
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "closed"  # the endless generator's finally ran
    streamer.wait_for(lambda: streamer.metric("cortex_in_flight_requests") == 0, what="0 left")


def test_an_error_before_the_first_chunk_is_a_500(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "stream.py")
    with RuntimeProcess(spec) as rt:
        reply = rt.post(params={"fail_first": "1"})
    assert reply.status_code == 500
    assert reply.json()["error"] == "ValueError: no tokens for you"


def test_sync_stream_frames_non_text_chunks_as_json(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "stream.py")
    with RuntimeProcess(spec) as rt:
        sse = rt.post(params={"n": "2"}, headers={"accept": "text/event-stream"})
        raw = rt.post(params={"n": "2"})
    assert sse.text == 'data: token 0\n\ndata: {"i":1}\n\n'
    assert raw.content == b'token 0{"i":1}\n'
