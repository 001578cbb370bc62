"""End-to-end test: build this example's models, serve them from one runtime, call them over
HTTP. Pure Python models: no extra package needed."""

import json
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import build_models  # noqa: E402  (this folder, put on sys.path above)

ENDPOINT = "/model-zoo"
SAMPLE = json.loads((HERE / "sample.json").read_text())
WAIT_S = 30


@pytest.fixture(scope="module")
def zoo(serve_example, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("model-zoo")
    models = workdir / "models"
    build_models.build_all(models)
    section = {"dir": str(models), "cache_size": 2, "max_bytes": "64Mi", "poll_interval": "200ms"}
    with serve_example(HERE, "model-zoo", {}, workdir, {"models": section}) as client:
        yield client, models


def test_the_query_picks_the_model_and_latest_is_the_highest_version(zoo):
    client, _ = zoo
    iris = client.post(ENDPOINT, params={"model": "iris"}, json=SAMPLE)
    assert iris.status_code == 200, iris.text
    assert iris.json()["label"] in {"setosa", "versicolor", "virginica"}
    assert iris.json()["version"] == 2
    first = client.post(ENDPOINT, params={"model": "iris", "version": "1"}, json=SAMPLE)
    assert first.json()["version"] == 1
    wine = client.post(ENDPOINT, params={"model": "wine"}, json={"features": [1, 2, 3]})
    assert wine.json()["label"] in {"barolo", "grignolino", "barbera"}


def test_an_unknown_model_is_a_404_that_lists_the_models(zoo):
    client, _ = zoo
    r = client.post(ENDPOINT, params={"model": "unicorn"}, json=SAMPLE)
    assert r.status_code == 404
    assert r.json()["models"] == ["iris", "penguins", "wine"]


def test_a_bad_payload_is_a_400_saying_what_to_send(zoo):
    client, _ = zoo
    r = client.post(ENDPOINT, params={"model": "wine"}, json=SAMPLE)  # 4 features, wine takes 3
    assert r.status_code == 400
    assert r.json() == {"error": 'send {"features": [3 numbers]}'}


def test_the_cache_keeps_two_models_and_the_description_says_which(zoo):
    client, _ = zoo
    for name in ("penguins", "iris", "wine"):
        client.post(
            ENDPOINT,
            params={"model": name},
            json={"features": [1, 2, 3, 4][: 3 if name == "wine" else 4]},
        )
    described = client.get(ENDPOINT).json()
    loaded = {m["name"]: m["loaded"] for m in described["models"]}
    assert sum(len(versions) for versions in loaded.values()) == 2
    assert loaded["wine"] == [1] and loaded["penguins"] == []
    assert described["model_cache"]["memory"]["models"] == 2


def test_a_new_version_folder_becomes_latest(zoo):
    client, models = zoo
    build_models.build_model(models, "penguins", 2)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        answer = client.post(ENDPOINT, params={"model": "penguins"}, json=SAMPLE)
        assert answer.status_code == 200, answer.text
        if answer.json()["version"] == 2:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"penguins version 2 not served within {WAIT_S} s")
    versions = {m["name"]: m["versions"] for m in client.get(ENDPOINT).json()["models"]}
    assert versions["penguins"] == [1, 2]
