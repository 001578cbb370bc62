"""Fixtures shared by the examples' tests: tiny offline models and a real runtime to serve them.

torch and transformers are imported only inside the fixtures that need them, so collecting the
suite stays cheap and works without the `examples` extra.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cortex.contracts import RuntimeArgs, runtime_command

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
    """``serve_example(example_dir, api, config, workdir, predictor=None)``: a context manager
    yielding a client.

    It copies the example's ``predictor.py`` into ``workdir`` next to a one-API ``cortex.yaml``
    whose ``predictor.config`` is ``config`` (its other ``predictor`` fields: ``predictor``),
    runs ``python -m cortex.runtime`` on a free port, waits for ``/readyz`` and yields an
    ``httpx.Client`` on it; on exit it sends SIGTERM.
    """
    return _serve


def _write_project(example_dir, api, config, workdir, predictor):
    shutil.copy(Path(example_dir) / "predictor.py", workdir / "predictor.py")
    fields = {"type": "python", "path": "predictor.py", "config": config, **(predictor or {})}
    spec = [{"name": api, "kind": "RealtimeAPI", "predictor": fields}]
    spec_path = workdir / "cortex.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec_path


def _wait_ready(proc, status_path, log_path):
    """The port of a runtime started with ``--port 0``, once its status file says ready."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"runtime exited with {proc.returncode} before ready:\n{log_path.read_text()}"
            )
        try:
            status = json.loads(status_path.read_text())
        except (OSError, ValueError):
            status = {}
        if status.get("state") == "ready":
            return status["port"]
        time.sleep(0.1)
    pytest.fail(f"runtime not ready after {READY_TIMEOUT_S} s:\n{log_path.read_text()}")


@contextlib.contextmanager
def _serve(example_dir, api, config, workdir, predictor=None):
    httpx = pytest.importorskip("httpx")
    spec_path = _write_project(example_dir, api, config, Path(workdir), predictor)
    log_path = Path(workdir) / "runtime.log"
    status_path = Path(workdir) / "status.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    args = RuntimeArgs(spec=str(spec_path), api=api, host="127.0.0.1", port=0)
    args = dataclasses.replace(args, status_file=str(status_path))
    cmd = runtime_command(args, python=sys.executable)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        port = _wait_ready(proc, status_path, log_path)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
