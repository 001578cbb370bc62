"""Local runtime processes: start them detached, recognise them by pid, stop them, find ports.

A pid alone proves nothing (it may have been recycled by an unrelated program), so a process
counts as ours only while its command line still holds a marker we chose (the path of the API's
spec copy). The runtime is started as ``python -m cortex.runtime`` in a new session, never
imported: the CLI stays free of server dependencies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Container
from pathlib import Path

__all__ = [
    "FIRST_PORT",
    "command_line",
    "is_ours",
    "pick_port",
    "port_in_use",
    "start_runtime",
    "stop",
]

FIRST_PORT = 8888
_POLL = 0.05


def start_runtime(
    args: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> int:
    """Start ``python -m cortex.runtime ARGS`` in ``cwd``, detached (own session), output
    appended to a log; returns its pid once it runs."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cortex.runtime", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    # /proc shows the new command line only a moment after the exec: wait for it, so that the
    # caller's liveness checks never mistake a process that is starting for a dead one.
    _wait(lambda: process.poll() is not None or is_ours(process.pid, "cortex.runtime"), 5)
    # Never waited for to the end: it outlives this command (init reaps it then).
    return process.pid


def command_line(pid: int) -> str | None:
    """The command line of a live process, or None (gone, a zombie, or not ours to read)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            raw = proc.read_bytes()
        except OSError:
            return None
        return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None
    try:  # no /proc (macOS): ask ps
        result = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def is_ours(pid: int, marker: str) -> bool:
    """True while ``pid`` runs the cortex runtime with ``marker`` on its command line."""
    if pid <= 0:
        return False
    line = command_line(pid)
    return line is not None and "cortex.runtime" in line and marker in line


def stop(pid: int, marker: str, grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds for a drain, then SIGKILL the whole session."""
    if not is_ours(pid, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait(lambda: not is_ours(pid, marker), grace):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    _wait(lambda: not is_ours(pid, marker), 5)


def _wait(done: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding ``host:port`` fails the way the runtime's bind would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def wait_port_free(port: int, seconds: float) -> bool:
    """Wait until nothing listens on ``port`` any more."""
    return _wait(lambda: not port_in_use(port), seconds)


def pick_port(
    taken: Container[int],
    in_use: Callable[[int], bool] = port_in_use,
    first: int = FIRST_PORT,
) -> int:
    """The first port from ``first`` up that no local API has and no program listens on."""
    for port in range(first, 65536):
        if port not in taken and not in_use(port):
            return port
    raise OSError(f"no free port between {first} and 65535")
