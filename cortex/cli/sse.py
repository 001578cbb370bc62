"""Reads Server-Sent Events as their bytes arrive: the data of each complete event. Pure.

Follows the HTML standard's parsing rules where ``cortex predict`` needs them: lines end in LF
or CRLF (a lone CR, which the standard also allows, is not taken as an end of line);
the ``data:`` lines of one event are joined with newlines, one leading space dropped; a blank
line ends an event; comments and other fields are ignored; an event left unfinished when the
stream ends is dropped.
"""

from __future__ import annotations

__all__ = ["EventData"]


class EventData:
    """Feed it chunks of a stream; it returns the data of the events they complete."""

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        events = []
        for raw in lines:
            line = raw.removesuffix(b"\r").decode("utf-8", errors="replace")
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                self._data = []
            elif line == "data" or line.startswith("data:"):
                value = line[len("data:") :]
                self._data.append(value.removeprefix(" "))
        return events
