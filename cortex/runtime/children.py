"""The master's child processes: dying with it, reaping them, and saying how they ended."""

from __future__ import annotations

import ctypes
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


PR_SET_PDEATHSIG = 1


def die_with_parent(master_pid: int) -> None:
    """Ask Linux to SIGKILL this process (a worker, a relay) when the master dies: no orphan
    keeps the port.

    SIGKILL, not SIGTERM: a worker draining on SIGTERM would wait for its requests, and a hung
    one would keep it alive. A master that died before the request was made is not noticed
    by it, hence the check of the parent after it.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: orphans are left to the CLI's group kill
        pass
    if os.getppid() != master_pid:
        os._exit(1)
