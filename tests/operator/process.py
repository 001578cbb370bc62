"""``python -m cortex.operator`` as a child process, as a cluster runs it: health, logs, signals.

kopf's health endpoint takes a URL, not a socket, so the port is found by binding port 0 and
closing it; if another process takes it meanwhile the operator exits with "address already in
use" and is started again on another port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.fakeapi import wait_for

_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> tuple[int, Any] | None:
    """(status, JSON body) of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError:
        return None


class OperatorProcess:
    """The operator in a child process with a health endpoint; its output goes to ``log``.

    ``with OperatorProcess(...) as operator:`` starts it and, whatever happens, stops it.
    """

    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        *args: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log = log
        self._args = args
        self._env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "CORTEX_OPERATOR_NAMESPACE": "default",
            "CORTEX_OPERATOR_ROUTING": "ingress",  # the four children the tests look at
            "CORTEX_OPERATOR_INGRESS_CLASS": "nginx",
            **(env or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None
        self.health = ""

    def start(self) -> OperatorProcess:
        """Start it and wait until its health endpoint answers (killing it if it does not)."""
        try:
            return self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _start(self) -> OperatorProcess:
        for _ in range(_ATTEMPTS):
            self.health = f"http://127.0.0.1:{free_port()}/healthz"
            command = [sys.executable, "-m", "cortex.operator", "--liveness", self.health]
            with self.log.open("ab") as output:
                self._process = subprocess.Popen(
                    [*command, *self._args], env=self._env, stdout=output, stderr=output
                )
            wait_for(
                lambda: self._process.poll() is not None or get(self.health),  # type: ignore[union-attr]
                what=f"the health endpoint {self.health}",
            )
            if self._process.poll() is None:
                return self
            if "address already in use" not in self.log.read_text():
                raise AssertionError(f"the operator exited: {self.log.read_text()[-2000:]}")
        raise AssertionError(f"no free port for the health endpoint in {_ATTEMPTS} attempts")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(30)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM: a clean stop; SIGKILL: a crash) and wait; the exit code."""
        assert self._process is not None
        if self._process.poll() is None:
            self._process.send_signal(sig)
        return self._process.wait(30)

    def lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        """The log lines parsed as JSON (``--log-format json``); fails on any other line."""
        return [json.loads(line) for line in self.lines()]

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines())

    def wait_logged(self, text: str) -> None:
        wait_for(lambda: self.logged(text), what=f"{text!r} in {self.log}")
