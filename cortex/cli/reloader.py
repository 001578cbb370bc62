"""``cortex serve --reload``: the runtime in the foreground, reloaded when a project file changes.

Twice a second it compares the size and modification time of the files a deploy would pack
(:func:`cortex.cli.project.members`, so ``.cortexignore`` applies). On a change it sends the
runtime SIGHUP: new processes load the new code and spec while the old ones serve, so no request
fails, and a predictor that no longer loads leaves the old one serving. A runtime that exited (a
predictor that never loaded) is started again on the next change. Polling needs no dependency
(watchfiles comes only through uvicorn's extras) and a project folder is small; the runtime's
own output goes to this terminal.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import click

from cortex import errors
from cortex.cli import project

__all__ = ["run"]

POLL_SECONDS = 0.5

Snapshot = tuple[tuple[str, int, int], ...] | str


def run(command: Sequence[str], folder: Path) -> int:
    """Run ``command`` (the runtime) until it stops or this process is told to stop; its exit
    code. SIGINT and SIGTERM are passed on to the runtime, which drains and exits."""
    stopping: list[int] = []

    def stop(sig: int, frame: FrameType | None) -> None:
        stopping.append(sig)
        if child.poll() is None:
            child.send_signal(sig)

    seen = _snapshot(folder)
    child = subprocess.Popen(command)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    exited = False
    while not stopping:
        time.sleep(POLL_SECONDS)
        if not exited and child.poll() is not None:
            exited = True
            _say(f"the runtime exited ({child.returncode}); save a change to start it again")
        current = _snapshot(folder)
        if current == seen:
            continue
        seen = current
        if isinstance(current, str):
            _say(f"not reloading: {current}")
        elif child.poll() is None:
            _say("project changed: reloading")
            child.send_signal(signal.SIGHUP)
        else:
            _say("project changed: starting again")
            child, exited = subprocess.Popen(command), False
    return child.wait()


def _snapshot(folder: Path) -> Snapshot:
    """(path, size, mtime) of each project file; the error's text when the folder cannot be
    packed (a change is still seen once it is fixed)."""
    try:
        found = project.members(folder)
        stats = [(name, path.stat()) for name, path in found]
    except errors.CortexError as exc:
        return str(exc)
    except FileNotFoundError as exc:  # removed between the walk and the stat: look again later
        return f"{exc.filename} was removed while being read"
    return tuple((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


def _say(message: str) -> None:
    click.echo(f"cortex serve: {message}", err=True)
