"""``python -m cortex.runtime`` as a real process: readiness, init failures, bad signatures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, free_port
from tests.runtime.harness import write_spec

pytestmark = pytest.mark.slow


def start(spec: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cortex.runtime",
            "--spec",
            str(spec),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_http(url: str, proc: subprocess.Popen[str], timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"runtime exited {proc.returncode}: {proc.stdout.read()}")  # type: ignore[union-attr]
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer in {timeout}s")


def test_readiness_is_503_until_init_finishes_then_200(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    spec = write_spec(tmp_path, "slow_init.py", predictor={"config": {"gate": str(gate)}})
    port = free_port()
    proc = start(spec, port)
    try:
        base = f"http://127.0.0.1:{port}"
        loading = wait_for_http(base + "/readyz", proc)
        assert loading.status_code == 503
        assert loading.json()["status"] == "loading"
        assert httpx.get(base + "/healthz").status_code == 200
        early = httpx.post(base + "/proc-api", json={})
        assert early.status_code == 503
        assert early.headers["retry-after"] == "1"
        gate.touch()
        deadline = time.monotonic() + 30
        while httpx.get(base + "/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.05)
        assert httpx.post(base + "/proc-api", json={}).json() == {"ok": True}
        assert httpx.get(base + "/v2/health/ready").status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_init_failure_exits_non_zero_with_the_traceback_logged(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "init_fails.py")
    proc = start(spec, free_port())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "predictor __init__ raised RuntimeError: model file weights.bin is missing" in out
    assert "Traceback (most recent call last)" in out
    assert "exiting: the predictor could not be loaded" in out


def test_unknown_predict_argument_is_a_clear_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "bad_signature.py")
    proc = start(spec, free_port())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert (
        "bad_signature.py: PythonPredictor.predict: argument 'model_name' is not supported "
        "(allowed: payload, query_params, headers)"
    ) in out
    assert "Traceback" not in out


def test_invalid_spec_is_a_one_line_error(tmp_path: Path) -> None:
    spec = tmp_path / "cortex.yaml"
    spec.write_text(
        "- name: Bad_Name\n  kind: RealtimeAPI\n  predictor: {type: python, path: p.py}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "cortex.runtime", "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_port_in_use_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(spec, port)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in out
    assert "choose another --port" in out


def test_serves_the_spec_the_operator_renders_into_the_pod(tmp_path: Path) -> None:
    """The Deployment's command and CORTEX_API_SPEC env start this runtime as they are."""
    from cortex.k8s import Owner, Settings, render_deployment
    from tests.conftest import make_api

    api = make_api("rendered", "payload_only.py", predictor={"config": {"factor": 10}})
    deployment = render_deployment(api, Owner("rendered", "default", "uid-1"), Settings())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"].replace("$$", "$") for e in container["env"]}
    (tmp_path / "payload_only.py").write_text((FIXTURES / "payload_only.py").read_text())
    port = free_port()
    command = [sys.executable if arg == "python" else arg for arg in container["command"]]
    command = [str(tmp_path) if arg == "/mnt/project" else arg for arg in command]
    command[command.index("--port") + 1] = str(port)
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while wait_for_http(f"http://127.0.0.1:{port}/readyz", proc).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        answer = httpx.post(f"http://127.0.0.1:{port}/rendered", json={"x": 4})
    finally:
        proc.terminate()
        proc.wait(10)
    assert answer.json() == {"doubled": 40}
