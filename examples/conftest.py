"""Fixtures shared by the examples' tests: tiny offline models and a real runtime to serve them.

torch and transformers are imported only inside the fixtures that need them, so collecting the
suite stays cheap and works without the `examples` extra.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

READY_TIMEOUT_S = 120


def _builders():
    for module in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(module)
    import tiny_models  # this folder is on sys.path: pytest puts a conftest's folder there

    return tiny_models


@pytest.fixture(scope="session")
def tiny_seq2seq(tmp_path_factory):
    """A folder holding a tiny random BART summarizer and its tokenizer."""
    return _builders().build_seq2seq(tmp_path_factory.mktemp("tiny-seq2seq"))


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory):
    """A folder holding a tiny random BERT sentiment classifier and its tokenizer."""
    return _builders().build_classifier(tmp_path_factory.mktemp("tiny-classifier"))


@pytest.fixture(scope="session")
def serve_example():
    """``serve_example(example_dir, api, config, workdir)``: a context manager yielding a client.

    It copies the example's ``predictor.py`` into ``workdir`` next to a one-API ``cortex.yaml``
    whose ``predictor.config`` is ``config``, runs ``python -m cortex.runtime`` on a free port,
    waits for ``/readyz`` and yields an ``httpx.Client`` on it; on exit it sends SIGTERM.
    """
    return _serve


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_project(example_dir, api, config, workdir):
    shutil.copy(Path(example_dir) / "predictor.py", workdir / "predictor.py")
    spec = [
        {
            "name": api,
            "kind": "RealtimeAPI",
            "predictor": {"type": "python", "path": "predictor.py", "config": config},
        }
    ]
    spec_path = workdir / "cortex.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec_path


def _wait_ready(httpx, proc, base_url, log_path):
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"runtime exited with {proc.returncode} before ready:\n{log_path.read_text()}"
            )
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"runtime not ready after {READY_TIMEOUT_S} s:\n{log_path.read_text()}")


@contextlib.contextmanager
def _serve(example_dir, api, config, workdir):
    httpx = pytest.importorskip("httpx")
    spec_path = _write_project(example_dir, api, config, Path(workdir))
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = Path(workdir) / "runtime.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "cortex.runtime", "--spec", str(spec_path)]
    cmd += ["--api", api, "--port", str(port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(httpx, proc, base_url, log_path)
        with httpx.Client(base_url=base_url, timeout=30) as client:
            yield client
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
