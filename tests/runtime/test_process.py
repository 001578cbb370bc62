"""``python -m cortex.runtime`` as a real process: readiness, init failures, bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, make_api
from tests.runtime.harness import RuntimeProcess, write_spec

pytestmark = pytest.mark.slow


def test_readiness_is_503_until_init_finishes_then_200(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    spec = write_spec(tmp_path, "slow_init.py", predictor={"config": {"gate": str(gate)}})
    with RuntimeProcess(spec, wait=False) as rt:
        rt.wait_for(lambda: rt.get("/healthz").status_code == 200, what="liveness")
        loading = rt.get("/readyz")
        early = rt.post("/proc-api", json={})
        gate.touch()
        rt.wait_ready()
        ready = rt.post("/proc-api", json={})
        v2_ready = rt.get("/v2/health/ready").status_code
    assert loading.status_code == 503
    assert loading.json()["status"] == "loading"
    assert early.status_code == 503
    assert early.headers["retry-after"] == "1"
    assert ready.json() == {"ok": True}
    assert v2_ready == 200
    assert rt.proc.returncode == 0


def test_init_failure_exits_non_zero_with_the_traceback_logged(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "init_fails.py"), wait=False) as rt:
        code = rt.exit_code()
    out = rt.output()
    assert code == 1
    assert "predictor __init__ raised RuntimeError: model file weights.bin is missing" in out
    assert "Traceback (most recent call last)" in out
    assert "exiting: the predictor could not be loaded" in out


def test_unknown_predict_argument_is_a_clear_error(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "bad_signature.py"), wait=False) as rt:
        code = rt.exit_code()
    assert code == 1
    assert (
        "bad_signature.py: PythonPredictor.predict: argument 'model_name' is not supported "
        "(allowed: payload, query_params, headers)"
    ) in rt.output()
    assert "Traceback" not in rt.output()


def test_invalid_spec_is_a_one_line_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py", predictor={"processes_per_replica": 0})
    result = subprocess.run(
        [sys.executable, "-m", "cortex.runtime", "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: api 'proc-api': predictor.processes_per_replica 0 must be between 1 and 100\n"
    )
    assert "Traceback" not in result.stderr


def test_port_in_use_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with RuntimeProcess(spec, port=port, wait=False) as rt:
            code = rt.exit_code()
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in rt.output()
    assert "choose another --port" in rt.output()
    status = rt.status()
    assert status["state"] == "failed"
    assert status["cause"].startswith(f"cannot listen on 127.0.0.1:{port}: ")


def test_port_0_listens_on_a_free_port_and_reports_it(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "echo.py")) as rt:  # the harness passes --port 0
        port = rt.status()["port"]
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"x-request-id": "r-9"})
        missing = rt.get("/nope")
    assert port > 0
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "r-9"  # over real HTTP too, not only ASGI
    assert missing.status_code == 404
    assert missing.json()["request_id"] == missing.headers["x-request-id"]
    assert f"listening on 127.0.0.1:{port}" in rt.output()


def test_serves_the_spec_the_operator_renders_into_the_pod(tmp_path: Path) -> None:
    """The Deployment's command and CORTEX_API_SPEC env start this runtime as they are."""
    from cortex.k8s import OperatorSettings, Owner, render_deployment

    api = make_api("rendered", "payload_only.py", predictor={"config": {"factor": 10}})
    deployment = render_deployment(api, Owner("rendered", "default", "uid-1"), OperatorSettings())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"].replace("$$", "$") for e in container["env"]}  # k8s unescapes
    (tmp_path / "payload_only.py").write_text((FIXTURES / "payload_only.py").read_text())
    command = [sys.executable if arg == "python" else arg for arg in container["command"]]
    command = [str(tmp_path) if arg == "/mnt/project" else arg for arg in command]
    port_at = command.index("--port")
    del command[port_at : port_at + 2]  # the harness picks a free port
    spec = tmp_path / "cortex.yaml"  # only where the harness keeps its log and status files
    with RuntimeProcess(spec, command=command, env={**os.environ, **env}) as rt:
        answer = rt.post("/rendered", json={"x": 4})
    assert answer.json() == {"doubled": 40}


def _log_lines(rt: RuntimeProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in rt.output().splitlines() if line.startswith("{")]


def test_logs_are_json_lines_carrying_the_request_id(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "chatty.py")) as rt:
        rt.post(json={"text": "hi"}, headers={"x-request-id": "req-7"})
    lines = _log_lines(rt)
    scored = next(line for line in lines if line["message"] == "scoring hi")
    assert scored["request_id"] == "req-7"  # the user's own log line, from the predict thread
    assert scored["level"] == "info"
    assert scored["api"] == "proc-api"
    assert scored["logger"] == "my-model"
    assert not any("POST /predict" in str(line["message"]) for line in lines)  # access log off


def test_access_log_is_optional(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "chatty.py"), "--access-log") as rt:
        rt.post(json={"text": "hi"})
    assert any('"POST /predict HTTP/1.1" 200' in str(line["message"]) for line in _log_lines(rt))


def test_the_status_file_says_why_the_predictor_failed(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "init_fails.py"), wait=False) as rt:
        rt.exit_code()
    status = rt.status()
    assert status["state"] == "failed"
    assert status["cause"] == (
        "predictor __init__ raised RuntimeError: model file weights.bin is missing"
    )


def test_a_worker_keeps_its_inherited_heap_and_its_predictor_out_of_the_collectors_walks(
    tmp_path: Path,
) -> None:
    """A full collection walking the imported heap stalled sync requests ~20 ms at p99
    (bench: wrk -c64 on the trivial sync predictor); frozen objects are never walked."""
    with RuntimeProcess(write_spec(tmp_path, "gc_state.py")) as rt:
        frozen = rt.post(json={}).json()["frozen"]
    assert frozen > 10_000  # FastAPI, uvicorn, pydantic... and the predictor's model
