"""End-to-end test: serve this example's predictor with the real runtime and call it over HTTP.

The model is a tiny random BART built by `tiny_seq2seq` (examples/conftest.py): summaries are
gibberish, but the serving path (tokenize, generate, decode, JSON) is the real one.
"""

import importlib.util
import json
from pathlib import Path

import pytest

for module in ("torch", "transformers", "tokenizers", "httpx"):
    pytest.importorskip(module)

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ARTICLE = (
    "The city council approved the new budget after a long debate on Tuesday. Scientists "
    "found that the river water was cleaner than ten years ago."
)


@pytest.fixture(scope="module")
def client(serve_example, tiny_seq2seq, tmp_path_factory):
    config = {"model": str(tiny_seq2seq), "num_beams": 1, "max_new_tokens": 8}  # greedy
    workdir = tmp_path_factory.mktemp("summarizer")
    with serve_example(HERE, "summarizer", config, workdir) as c:
        yield c


def summarize(client, **request):
    r = client.post("/summarizer", **request)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["summary"]
    assert isinstance(body["summary"], str)
    assert body["summary"].strip()
    return body["summary"]


def test_json_text_gets_a_non_empty_summary(client):
    summarize(client, json={"text": ARTICLE})


def test_plain_text_body_gets_the_same_summary(client):
    plain = summarize(client, content=ARTICLE, headers={"Content-Type": "text/plain"})
    assert plain == summarize(client, json={"text": ARTICLE})


def test_greedy_summary_is_deterministic(client):
    summaries = {summarize(client, json={"text": ARTICLE}) for _ in range(3)}
    assert len(summaries) == 1


def test_max_new_tokens_from_config_bounds_the_summary(client, tiny_seq2seq):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_seq2seq)
    summary = summarize(client, json={"text": ARTICLE})
    assert len(tokenizer(summary, add_special_tokens=False)["input_ids"]) <= 8


def test_text_longer_than_the_model_takes_is_truncated(client):
    summarize(client, json={"text": " ".join([ARTICLE] * 100)})  # thousands of tokens; 128 fit


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"json": ["not", "an", "object"]},
        {"json": {}},
        {"json": {"article": ARTICLE}},
        {"json": {"text": 42}},
        {"json": {"text": "   "}},
        {"content": b"", "headers": {"Content-Type": "text/plain"}},
        {"content": b"\x00\x01", "headers": {"Content-Type": "application/octet-stream"}},
    ],
    ids=[
        "list",
        "empty-object",
        "no-text-key",
        "text-not-a-string",
        "blank-text",
        "empty-plain",
        "bytes",
    ],
)
def test_bad_payload_is_a_400_with_an_error(client, request_kwargs):
    r = client.post("/summarizer", **request_kwargs)
    assert r.status_code == 400, r.text
    assert 'send {"text": "..."}' in r.json()["error"]


def test_unknown_config_key_fails_at_load_naming_the_key(tiny_seq2seq):
    spec = importlib.util.spec_from_file_location("summarizer_predictor", HERE / "predictor.py")
    predictor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predictor)
    with pytest.raises(ValueError, match=r"\['num_beam'\]"):
        predictor.PythonPredictor({"model": str(tiny_seq2seq), "num_beam": 4})


def test_the_projects_sample_json_is_a_request_that_works(client):
    summarize(client, json=json.loads((HERE / "sample.json").read_text()))
