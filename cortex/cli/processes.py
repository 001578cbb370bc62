"""Local runtime processes: start them detached, recognise them by pid, stop them, give them
their listening socket.

A pid alone proves nothing (it may have been recycled by an unrelated program), so a process
counts as ours only while its command line still holds a marker we chose (the path of the API's
spec copy). The runtime is started as ``python -m cortex.runtime`` in a new session, never
imported: the CLI stays free of server dependencies.

Ports: the CLI binds the API's port itself and hands the listening socket to the runtime
(``--fd``). Binding is the only race-free test that a port is free; probing a port and letting
the runtime bind it later loses it to any program that binds in between.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Container
from pathlib import Path

from cortex import contracts

__all__ = [
    "FIRST_PORT",
    "command_line",
    "is_ours",
    "listen",
    "listen_on_first_free",
    "port_in_use",
    "start_runtime",
    "stop",
    "wait_port_free",
]

FIRST_PORT = contracts.DEFAULT_PORT
_POLL = 0.05
_BACKLOG = 2048  # as the runtime's own bind


def start_runtime(
    args: contracts.RuntimeArgs,
    log_path: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    sock: socket.socket | None = None,
    python: str = sys.executable,
) -> int:
    """Start ``python -m cortex.runtime ARGS`` in ``cwd``, detached (own session), output
    appended to a log, listening on ``sock`` if given; returns its pid once it runs."""
    if sock is not None:
        args = dataclasses.replace(args, fd=sock.fileno())
    command = contracts.runtime_command(args, python=python)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            pass_fds=() if sock is None else (sock.fileno(),),
            env=env,
        )
    # /proc shows the new command line only a moment after the exec: wait for it, so that the
    # caller's liveness checks never mistake a process that is starting for a dead one.
    _wait(lambda: process.poll() is not None or is_ours(process.pid, contracts.RUNTIME_MODULE), 5)
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
    return line is not None and contracts.RUNTIME_MODULE in line and marker in line


def stop(pid: int, marker: str, grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds for a drain, then SIGKILL what is left of the
    session: the runtime started it (``start_new_session``), so its workers are in it too,
    also when the master itself is already gone (killed with SIGKILL, say)."""
    if is_ours(pid, marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if _wait(lambda: not is_ours(pid, marker), grace) and not _session(pid, marker):
            return
    for member in _session(pid, marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)
    _wait(lambda: not _session(pid, marker), 5)


def _session(sid: int, marker: str) -> list[int]:
    """Our runtime's processes in session ``sid``: its master and the workers it forked."""
    if sid <= 0:
        return []
    if not Path("/proc/self").exists():  # no /proc (macOS): the leader, if it still runs
        return [sid] if is_ours(sid, marker) else []
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # after the command name (in parentheses): state, ppid, pgrp, session
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        if int(fields[3]) == sid and is_ours(pid, marker):
            members.append(pid)
    return members


def _wait(done: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding ``host:port`` fails the way the runtime's bind would."""
    try:
        listen(port, host).close()
    except OSError:
        return True
    return False


def wait_port_free(port: int, seconds: float) -> bool:
    """Wait until nothing listens on ``port`` any more."""
    return _wait(lambda: not port_in_use(port), seconds)


def listen(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A socket listening on ``host:port``, bound as the runtime binds; OSError when taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def listen_on_first_free(
    taken: Container[int], first: int = FIRST_PORT, host: str = "127.0.0.1"
) -> socket.socket:
    """Listen on the first port from ``first`` up that no local API has and no program holds."""
    for port in range(first, 65536):
        if port in taken:
            continue
        try:
            return listen(port, host)
        except OSError:
            continue
    raise OSError(f"no free port between {first} and 65535")
