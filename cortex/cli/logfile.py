"""Reading an API's log file: its tail, the reason it failed, and following it as it grows.

The runtime writes JSON lines (``time``, ``level``, ``message``, optional ``traceback``); a
process that cannot start may also leave plain text (``error: ...`` from argument checks).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from cortex.cli import format

__all__ = ["follow", "last_error", "last_word", "master_crash", "read_lines", "tail"]

_TAIL_BYTES = 64 * 1024
_FOLLOW_POLL = 0.2
_WORD_CHARS = 100
_RUNTIME = "cortex.runtime"  # the logger of the runtime's own lines


def read_lines(path: Path, offset: int = 0, max_bytes: int = _TAIL_BYTES) -> list[str]:
    """The last lines of ``path`` written after byte ``offset`` (at most ``max_bytes`` of them)."""
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, 2)
            start = max(offset, end - max_bytes, 0)
            handle.seek(start)
            data = handle.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    if start > offset and lines:
        lines = lines[1:]  # cut mid-line
    return lines


def tail(lines: Sequence[str], count: int = 12) -> tuple[str, ...]:
    """The last ``count`` lines once rendered readably (tracebacks expanded)."""
    rendered = [part for line in lines for part in format.log_lines(line)]
    return tuple(rendered[-count:])


def _record(line: str) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def last_error(lines: Sequence[str]) -> str | None:
    """The last error a process logged (a JSON record, or a plain ``error: ...`` line)."""
    for line in reversed(lines):
        record = _record(line)
        if record is None:
            if line.startswith("error: "):
                return line.removeprefix("error: ").strip()
        elif record.get("level") in ("error", "critical"):
            return str(record.get("message", "")).strip()
    return None


def master_crash(lines: Sequence[str]) -> str | None:
    """The runtime master's own last word, if it crashed: it logs that at critical."""
    for line in reversed(lines):
        record = _record(line)
        if record and record.get("level") == "critical" and record.get("logger") == _RUNTIME:
            return str(record.get("message", "")).strip()
    return None


def last_word(lines: Sequence[str]) -> str | None:
    """What the process said last, shortened to one line: a predictor's log line or print
    (``download failed, retrying in 10s``), not the server's own start-up chatter."""
    for line in reversed(lines):
        record = _record(line)
        if record is None:
            text = line.strip()
        elif str(record.get("logger", "")).startswith("uvicorn"):
            continue
        else:
            text = " ".join(str(record.get("message", "")).split())
        if text:
            return text if len(text) <= _WORD_CHARS else text[: _WORD_CHARS - 3] + "..."
    return None


def follow(path: Path, keep_going: Callable[[], bool]) -> Iterator[str]:
    """Every line of ``path``, then new ones as they come, while ``keep_going()`` holds.

    The file stays open, so lines written just before it is removed are still read; a file
    replaced by a new one (the API deleted and deployed again) is followed from its start.
    """
    handle = _open(path)
    pending = b""
    try:
        while True:
            chunk = handle.read() if handle else b""
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", errors="replace")
            if chunk:
                continue
            if not keep_going():
                return
            if handle is None or _replaced(path, handle):
                handle, pending = _open(path), b""
            time.sleep(_FOLLOW_POLL)
    finally:
        if handle:
            handle.close()


def _open(path: Path) -> BinaryIO | None:
    try:
        return path.open("rb")
    except OSError:
        return None


def _replaced(path: Path, handle: BinaryIO) -> bool:
    try:
        return path.stat().st_ino != os.fstat(handle.fileno()).st_ino
    except OSError:
        return False
