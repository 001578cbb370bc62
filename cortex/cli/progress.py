"""A progress indicator for slow steps (model loading): a spinner on a terminal, lines otherwise.

On a terminal one line is redrawn in place (``⠋ waiting for text-embedder (loading) 12s``); in
a pipe or a CI log each change of the text is printed once, so logs stay short.
"""

from __future__ import annotations

import time
from typing import TextIO

from cortex.cli import format

__all__ = ["Progress"]

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_ASCII_FRAMES = "-\\|/"


class Progress:
    """Shows ``update(text)`` calls on ``stream``; ``finish()`` clears the spinner line."""

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self.frames = _FRAMES if encoding == "utf8" else _ASCII_FRAMES
        self.started = time.monotonic()
        self.ticks = 0
        self.last = ""

    def update(self, text: str) -> None:
        if self.tty:
            frame = self.frames[self.ticks % len(self.frames)]
            elapsed = format.format_age(time.monotonic() - self.started)
            self.stream.write(f"\r\033[K{frame} {text} {elapsed}")
            self.stream.flush()
        elif text != self.last:
            self.stream.write(f"{text}\n")
            self.stream.flush()
        self.ticks += 1
        self.last = text

    def finish(self) -> None:
        if self.tty and self.ticks:
            self.stream.write("\r\033[K")
            self.stream.flush()
