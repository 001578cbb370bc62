"""Server-Sent Events read as their bytes arrive, cut anywhere."""

from __future__ import annotations

import pytest

from cortex.cli import sse

STREAM = (
    b": a comment\r\n"
    b"event: token\r\n"
    b"data: first line\r\n"
    b"data:second line\r\n"
    b"\r\n"
    b'data: {"i": 1}\n'
    b"id: 7\n"
    b"\n"
    b"data\n"
    b"\n"
    b"retry: 10\n"
    b"\n"
    b"data: never ended\n"
)


@pytest.mark.parametrize("size", [1, 2, 5, len(STREAM)])
def test_events_are_their_data_lines_however_the_stream_is_cut(size: int) -> None:
    reader = sse.EventData()
    events = []
    for start in range(0, len(STREAM), size):
        events += reader.feed(STREAM[start : start + size])

    assert events == ["first line\nsecond line", '{"i": 1}', ""]
