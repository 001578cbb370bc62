"""The master's worker processes once they end: reaping them, and saying how they ended."""

from __future__ import annotations

import os
import signal

UNKNOWN = -1000  # the exit code of a child reaped by someone else


def how_it_ended(code: int) -> str:
    """A worker's end in words, from its exit code (negative: the signal that killed it)."""
    if code == UNKNOWN:
        return "ended (how is unknown: it was reaped elsewhere)"
    if code >= 0:
        return f"exited with exit code {code}"
    try:
        sig = signal.Signals(-code)
    except ValueError:
        return f"was killed by signal {-code}"
    if sig == signal.SIGKILL:
        return "was killed by SIGKILL (out of memory?)"
    if sig == signal.SIGSEGV:
        return "crashed: segfault (SIGSEGV)"
    return f"was killed by {sig.name}"


_codes: dict[int, int] = {}


def exited(pid: int, block: bool = False) -> int | None:
    """The exit code of a child that ended (reaping it), else None."""
    if pid in _codes:
        return _codes[pid]
    try:
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return _codes.setdefault(pid, UNKNOWN)
    if done == 0:
        return None
    _codes[pid] = os.waitstatus_to_exitcode(status)
    return _codes[pid]
