"""Runs ``python -m cortex.runtime`` as a real process for tests that need real HTTP."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from cortex.contracts import Flag, RuntimeStatus
from tests.conftest import FIXTURES, spec_dict


def write_spec(tmp_path: Path, path: str, name: str = "proc-api", **sections: Any) -> Path:
    spec = tmp_path / "cortex.yaml"
    (tmp_path / path).write_text((FIXTURES / path).read_text())
    spec.write_text(yaml.safe_dump([spec_dict(name, path, **sections)]))
    return spec


class RuntimeProcess:
    """A runtime master process; ``with`` waits for ready and stops it.

    It runs with ``--port 0`` unless given a port: the runtime binds a free one itself and
    writes it to its status file, which leaves no window for another process to take it.
    """

    def __init__(
        self,
        spec: Path,
        *args: str,
        port: int | None = None,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
        cwd: Path | None = None,
    ) -> None:
        """Run ``python -m cortex.runtime --spec SPEC ...``, or ``command`` with ``--port``.

        ``with`` waits until it is ready, unless ``wait`` is False.
        """
        self.spec = spec
        self.wait = wait
        self._port = port
        self.status_file = spec.parent / "status.json"
        self.status_file.unlink(missing_ok=True)  # a stale one would tell an old port
        self.log = spec.parent / "runtime.log"
        runtime = [sys.executable, "-m", "cortex.runtime", Flag.SPEC, str(spec)]
        cmd = [*(command or runtime), Flag.PORT, str(port or 0), Flag.HOST, "127.0.0.1"]
        cmd += [Flag.STATUS_FILE, str(self.status_file), *args]
        with self.log.open("w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd
            )

    def __enter__(self) -> RuntimeProcess:
        if self.wait:
            self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        terminate(self.proc)

    @property
    def port(self) -> int:
        """The port it listens on: the one asked for, else the one its status file reports."""
        if self._port is None:
            self.wait_for(lambda: self._record() is not None, what="a status file")
            record = self._record()
            assert record is not None
            self._port = record.port
        return self._port

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _record(self) -> RuntimeStatus | None:
        try:
            return RuntimeStatus.from_json(self.status_file.read_text())
        except FileNotFoundError:
            return None

    def output(self) -> str:
        return self.log.read_text()

    def exit_code(self, timeout: float = 60) -> int:
        """Wait for the process to end by itself."""
        return self.proc.wait(timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait_for(lambda: self.get("/readyz").status_code == 200, timeout, "ready")

    def wait_for(self, condition: Any, timeout: float = 30, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"runtime exited {self.proc.returncode}:\n{self.output()}")
            try:
                if condition():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout}s:\n{self.output()[-3000:]}")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=10)

    def post(self, path: str = "/predict", **kwargs: Any) -> httpx.Response:
        return httpx.post(self.base + path, timeout=30, **kwargs)

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.status_file.read_text()))

    def workers(self) -> list[int]:
        """The live worker processes: the master's children."""
        return children(self.proc.pid)

    def metric(self, name: str) -> float:
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"metric {name} not found")


def terminate(proc: subprocess.Popen[Any], grace: float = 30) -> None:
    """SIGTERM, and SIGKILL when it has not exited within ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def children(pid: int) -> list[int]:
    """The live (not zombie) child processes of ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if int(ppid) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    return state(pid) not in (None, "Z")


def state(pid: int) -> str | None:
    """The process state letter of ``pid`` (R, S, D, Z...), None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def raw_post(port: int, query: str = "", head: str = "content-length: 0\r\n") -> socket.socket:
    """A connection that has sent a prediction request's head (and no more): the test decides
    what follows (the rest of a body, nothing, or closing it)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"POST /predict{query} HTTP/1.1\r\nhost: x\r\n{head}\r\n".encode())
    return sock


def listening(port: int) -> bool:
    """Whether a socket listens on ``port``, from /proc/net/tcp (a connection attempt could
    connect to itself on a free port, and binding fails while another program's client uses
    it as its source port)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False
