"""End-to-end test: serve both models of this example from one runtime and call them over HTTP.

The models are tiny random ones built by `tiny_classifier` and `tiny_seq2seq`
(examples/conftest.py): the labels and summaries mean nothing, their shapes are the real ones.
"""

import json
from pathlib import Path

import pytest

for module in ("torch", "transformers", "tokenizers", "httpx"):
    pytest.importorskip(module)

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ENDPOINT = "/text-analyzer"
TEXT = "Model serving frameworks wrap a predictor class behind an HTTP API. It works well."
CHOICES = "choose one of: sentiment, summarizer"


@pytest.fixture(scope="module")
def client(serve_example, tiny_classifier, tiny_seq2seq, tmp_path_factory):
    config = {"sentiment": str(tiny_classifier), "summarizer": str(tiny_seq2seq)}
    workdir = tmp_path_factory.mktemp("multi-model")
    with serve_example(HERE, "text-analyzer", config, workdir) as c:
        yield c


def test_sentiment_answers_a_label_and_a_score(client):
    r = client.post(ENDPOINT, params={"model": "sentiment"}, json={"text": TEXT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(body) == ["label", "score"]
    assert body["label"] in {"POSITIVE", "NEGATIVE"}
    assert isinstance(body["score"], float)
    assert 0.5 <= body["score"] <= 1.0  # the winning label of two


def test_summarizer_answers_a_summary(client):
    r = client.post(ENDPOINT, params={"model": "summarizer"}, json={"text": TEXT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["summary"]
    assert isinstance(body["summary"], str)
    assert body["summary"].strip()


@pytest.mark.parametrize("model", ["sentiment", "summarizer"])
def test_plain_text_body_gets_the_same_answer_as_json(client, model):
    as_json = client.post(ENDPOINT, params={"model": model}, json={"text": TEXT})
    plain = client.post(
        ENDPOINT, params={"model": model}, content=TEXT, headers={"Content-Type": "text/plain"}
    )
    assert plain.status_code == as_json.status_code == 200, plain.text
    assert plain.json() == as_json.json()


def test_the_default_predict_route_also_dispatches_on_the_query(client):
    r = client.post("/predict", params={"model": "sentiment"}, json={"text": TEXT})
    assert r.status_code == 200, r.text
    assert sorted(r.json()) == ["label", "score"]


def test_long_text_is_truncated_for_both_models(client):
    long_text = " ".join([TEXT] * 100)  # thousands of tokens; 128 fit
    for model in ("sentiment", "summarizer"):
        r = client.post(ENDPOINT, params={"model": model}, json={"text": long_text})
        assert r.status_code == 200, (model, r.text)


def test_unknown_model_is_a_400_naming_the_choices(client):
    r = client.post(ENDPOINT, params={"model": "translator"}, json={"text": TEXT})
    assert r.status_code == 400, r.text
    assert r.json() == {"error": f"unknown model 'translator'; {CHOICES}"}


def test_missing_model_is_a_400_naming_the_parameter(client):
    r = client.post(ENDPOINT, json={"text": TEXT})
    assert r.status_code == 400, r.text
    assert r.json() == {"error": f"missing query parameter 'model'; {CHOICES}"}


@pytest.mark.parametrize("model", ["sentiment", "summarizer"])
@pytest.mark.parametrize("payload", [["a", "list"], {}, {"text": 42}, {"text": " "}])
def test_bad_payload_is_a_400_for_either_model(client, model, payload):
    r = client.post(ENDPOINT, params={"model": model}, json=payload)
    assert r.status_code == 400, r.text
    assert 'send {"text": "..."}' in r.json()["error"]


@pytest.mark.parametrize("model", ["sentiment", "summarizer"])
def test_the_projects_sample_json_is_a_request_that_works(client, model):
    sample = json.loads((HERE / "sample.json").read_text())
    r = client.post(ENDPOINT, params={"model": model}, json=sample)
    assert r.status_code == 200, r.text
