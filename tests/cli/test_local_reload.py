"""The local loop: edited code is redeployed, ``--force``, ``predictor.env`` and
``cortex serve --reload``, through the real CLI and runtime processes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from tests.cli.conftest import CLI, api
from tests.cli.test_local_e2e import RequestLoop, post

pytestmark = pytest.mark.slow

PREDICTOR = """
import os
import time


class PythonPredictor:
    def __init__(self, config):
        time.sleep({load_seconds})  # a model that takes a while to load
        self.version = {version}

    def predict(self, payload):
        return {{"version": self.version, "pid": os.getpid()}}
"""


def write_predictor(project: Path, version: int, load_seconds: float = 0) -> None:
    (project / "predictor.py").write_text(
        PREDICTOR.format(version=version, load_seconds=load_seconds)
    )


def write_project(project: Path, load_seconds: float = 0) -> None:
    """The API ``coder`` of ``predictor.py``, version 1."""
    write_predictor(project, version=1, load_seconds=load_seconds)
    spec = [
        {
            "name": "coder",
            "kind": "RealtimeAPI",
            "predictor": {"type": "python", "path": "predictor.py"},
        }
    ]
    (project / "cortex.yaml").write_text(yaml.safe_dump(spec))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)


def test_an_edited_predictor_is_redeployed_with_no_failed_requests(cli: CLI) -> None:
    write_project(cli.project)
    cli.ok("deploy")
    url = f"http://127.0.0.1:{cli.port('coder')}/coder"

    with RequestLoop(url) as loop:
        loop.wait_for(version=1)
        write_predictor(cli.project, version=2)  # the code changes, cortex.yaml does not
        out = cli.ok("deploy")
        loop.wait_for(version=2)

    assert "updating coder (RealtimeAPI)" in out
    assert loop.failures == []
    assert post(url, {}).json()["version"] == 2
    assert "coder is up to date" in cli.ok("deploy")


def test_force_reloads_an_unchanged_api_in_new_processes(cli: CLI) -> None:
    # Loading takes long enough that a deploy which did not wait for the reload would be seen.
    write_project(cli.project, load_seconds=2)
    cli.ok("deploy")
    url = f"http://127.0.0.1:{cli.port('coder')}/coder"
    before = post(url, {}).json()["pid"]

    assert "coder is up to date" in cli.ok("deploy")
    assert post(url, {}).json()["pid"] == before
    out = cli.ok("deploy", "--force")

    assert "updating coder (RealtimeAPI)" in out
    assert "coder is live at" in out
    assert post(url, {}).json()["pid"] != before


def test_predictor_env_reaches_the_predictor_and_follows_each_deploy(cli: CLI) -> None:
    spec = api("echo", "env_echo.py", names=["GREETING"])
    spec["predictor"]["env"] = {"GREETING": "hi"}
    cli.write(spec)
    cli.env.pop("GREETING", None)
    cli.ok("deploy")
    url = f"http://127.0.0.1:{cli.port('echo')}/echo"
    assert post(url, {}).json() == {"GREETING": "hi"}

    spec["predictor"]["env"] = {"GREETING": "hello"}
    cli.write(spec)
    cli.ok("deploy")
    assert post(url, {}).json() == {"GREETING": "hello"}

    del spec["predictor"]["env"]
    cli.write(spec)
    cli.ok("deploy")
    assert post(url, {}).json() == {"GREETING": None}


class Serving:
    """``cortex serve --reload --port 0`` in the project, its output in a file."""

    def __init__(self, cli: CLI) -> None:
        self.output = cli.project.parent / "serve.log"
        command = [sys.executable, "-m", "cortex.cli.main", "serve", "--reload", "--port", "0"]
        with self.output.open("w") as sink:
            self.process = subprocess.Popen(
                command, cwd=cli.project, env=cli.env, stdout=sink, stderr=subprocess.STDOUT
            )

    def text(self) -> str:
        return self.output.read_text()

    def url(self, listening: int = 1) -> str:
        """The predict URL of the runtime started ``listening``-th (a new port each start)."""
        wait_until(lambda: self.text().count("listening on") >= listening, "listening line")
        port = re.findall(r"listening on 127\.0\.0\.1:(\d+)", self.text())[listening - 1]
        url = f"http://127.0.0.1:{port}/predict"
        wait_until(lambda: _answers(url), "ready runtime")
        return url

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def _answers(url: str) -> bool:
    try:
        return httpx.post(url, json={}, timeout=5, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_reload_loads_edited_code_with_no_failed_requests(cli: CLI) -> None:
    write_project(cli.project)
    serving = Serving(cli)
    try:
        url = serving.url()
        with RequestLoop(url) as loop:
            loop.wait_for(version=1)
            write_predictor(cli.project, version=2)
            loop.wait_for(version=2)
        assert loop.failures == []
        assert "cortex serve: project changed: reloading" in serving.text()
    finally:
        code = serving.stop()
    assert code == 0, serving.text()
    with pytest.raises(httpx.TransportError):
        httpx.post(url, json={}, timeout=5, trust_env=False)


def test_serve_reload_starts_a_predictor_that_failed_to_load_once_it_is_fixed(cli: CLI) -> None:
    write_project(cli.project)
    predictor = cli.project / "predictor.py"
    predictor.write_text(predictor.read_text().replace("self.version = 1", "1 / 0"))
    serving = Serving(cli)
    try:
        wait_until(lambda: "save a change to start it again" in serving.text(), "exit notice")
        write_predictor(cli.project, version=2)
        url = serving.url(listening=2)
        assert httpx.post(url, json={}, timeout=30, trust_env=False).json()["version"] == 2
        assert "cortex serve: project changed: starting again" in serving.text()
    finally:
        assert serving.stop() == 0, serving.text()
