"""Multi-model APIs through HTTP: the request's choice of model, single-flight under 50
concurrent requests, LRU, versions swapped without dropped requests, failures, the description
route and the cache's metrics. Real runtime processes where concurrency matters, the ASGI app
where a test triggers the poll itself."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortex.contracts import Metric
from tests.conftest import serving
from tests.runtime.harness import RuntimeProcess, write_spec

pytestmark = pytest.mark.anyio


def _models(root: Path, *names: str, version: int | None = None) -> Path:
    for name in names:
        folder = root / name / str(version) if version is not None else root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "weights.txt").write_text(f"{name}-weights")
    return root


def _models_section(root: Path, **budgets: Any) -> dict[str, Any]:
    return {"models": {"dir": str(root), "poll_interval": 0, **budgets}}


def _metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def _value(text: str, name: str, **labels: str) -> float:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in _metric_lines(text, name):
        if all(label in line for label in wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_the_query_chooses_the_model(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "iris", "wine")
    async with serving("many_models.py", predictor=_models_section(root)) as client:
        iris = await client.post("/predict", params={"model": "iris"}, json={})
        wine = await client.post("/predict", params={"model": "wine"}, json={})
    assert iris.json() == {"model": "iris-weights", "version": "iris"}
    assert wine.json()["model"] == "wine-weights"


async def test_an_unknown_model_is_a_404_naming_the_models_that_exist(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "iris", "wine")
    async with serving("many_models.py", predictor=_models_section(root)) as client:
        unknown = await client.post("/predict", params={"model": "zebra"}, json={})
        version = await client.post("/predict", params={"model": "iris", "version": "3"})
        unnamed = await client.post("/predict", json={})
    assert unknown.status_code == 404
    body = unknown.json()
    assert body["error"] == "unknown model 'zebra'; models: iris, wine"
    assert body["models"] == ["iris", "wine"] and body["request_id"]
    assert version.status_code == 404
    assert version.json()["error"] == "model 'iris' has no version 3; versions: 1"
    assert unnamed.status_code == 400
    assert unnamed.json()["error"] == "choose a model with ?model=NAME; models: iris, wine"


async def test_the_description_lists_models_versions_and_what_is_loaded(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "iris", version=1)
    _models(root, "iris", version=2)
    _models(root, "wine")
    section = _models_section(root, cache_size=2, max_bytes="1Mi")
    async with serving("many_models.py", predictor=section) as client:
        await client.post("/predict", params={"model": "iris"}, json={})
        described = (await client.get("/predict")).json()
    assert described["models"] == [
        {"name": "iris", "versions": [1, 2], "latest": 2, "loaded": [2]},
        {"name": "wine", "versions": [1], "latest": 1, "loaded": []},
    ]
    assert described["model_cache"] == {
        "cache_size": 2,
        "max_bytes": 2**20,
        "disk_cache_size": None,
        "memory": {"models": 1, "bytes": len("iris-weights")},
        "disk": {"models": 0, "bytes": 0},
    }
    assert "?model=NAME" in described["message"]


async def test_lru_by_count_over_http_and_its_metrics(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "a", "b", "c")
    async with serving("many_models.py", predictor=_models_section(root, cache_size=2)) as client:
        for name in ("a", "b", "a", "c"):
            r = await client.post("/predict", params={"model": name}, json={})
            assert r.status_code == 200, r.text
        described = (await client.get("/predict")).json()
        metrics = (await client.get("/metrics")).text
    assert {m["name"]: m["loaded"] for m in described["models"]} == {"a": [1], "b": [], "c": [1]}
    evictions = Metric.MODEL_EVICTIONS + "_total"
    assert _value(metrics, evictions, tier="memory", reason="count") == 1
    requests = Metric.MODEL_CACHE_REQUESTS + "_total"
    assert _value(metrics, requests, model="a", result="hit") == 1
    assert _value(metrics, requests, model="a", result="miss") == 1
    assert _value(metrics, Metric.MODELS_LOADED, tier="memory") == 2
    assert _value(metrics, Metric.MODEL_BYTES, tier="memory") == len("a-weights") * 2
    assert _value(metrics, Metric.MODEL_LOAD_SECONDS + "_count") == 3


async def test_lru_by_bytes_over_http(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "a", "b", "c")  # 9 bytes each (model_size)
    section = _models_section(root, max_bytes="20")
    async with serving("many_models.py", predictor=section) as client:
        for name in ("a", "b", "a", "c"):
            r = await client.post("/predict", params={"model": name}, json={})
            assert r.status_code == 200, r.text
        described = (await client.get("/predict")).json()
        metrics = (await client.get("/metrics")).text
    assert {m["name"]: m["loaded"] for m in described["models"]} == {"a": [1], "b": [], "c": [1]}
    assert described["model_cache"]["memory"] == {"models": 2, "bytes": 18}
    evictions = Metric.MODEL_EVICTIONS + "_total"
    assert _value(metrics, evictions, tier="memory", reason="bytes") == 1


async def test_a_requests_models_are_unloaded_off_the_event_loop(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "a", "b")
    section = _models_section(root, cache_size=1)
    async with serving("many_models.py", predictor=section) as client:
        both = await client.post("/predict", params={"model": "a"}, json={"also": "b"})
        assert both.status_code == 200, both.text
        predictor = client.runtime.predictor
        deadline = asyncio.get_running_loop().time() + 30
        while not predictor.unloaded_on and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)  # the unload was handed to a predict thread
        described = (await client.get("/predict")).json()
    assert predictor.unloaded_on and predictor.unloaded_on[0].startswith("predict-")
    assert {m["name"]: m["loaded"] for m in described["models"]} == {"a": [], "b": [1]}


async def test_per_model_labels_can_be_switched_off(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "a")
    section = _models_section(root, label_models=False)
    async with serving("many_models.py", predictor=section) as client:
        await client.post("/predict", params={"model": "a"}, json={})
        metrics = (await client.get("/metrics")).text
    lines = _metric_lines(metrics, Metric.MODEL_CACHE_REQUESTS + "_total")
    assert lines == ['cortex_model_cache_requests_total{api_name="test-api",result="miss"} 1.0']
    assert "model=" not in metrics


async def test_a_raising_loader_is_a_500_every_time_never_cached(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "bad")
    (root / "bad" / "weights.txt").write_text("raise")
    async with serving("many_models.py", predictor=_models_section(root)) as client:
        first = await client.post("/predict", params={"model": "bad"}, json={})
        (root / "bad" / "weights.txt").write_text("fixed")
        second = await client.post("/predict", params={"model": "bad"}, json={})
        metrics = (await client.get("/metrics")).text
    assert first.status_code == 500
    assert "ValueError: weights of bad are corrupt" in first.json()["error"]
    assert second.status_code == 200 and second.json()["model"] == "fixed"
    loads = Metric.MODEL_LOADS + "_total"
    assert _value(metrics, loads, model="bad", outcome="error") == 1
    assert _value(metrics, loads, model="bad", outcome="ok") == 1


async def test_a_new_version_is_latest_after_one_poll_without_dropped_requests(
    tmp_path: Path,
) -> None:
    root = _models(tmp_path / "models", "a", version=1)
    async with serving("many_models.py", predictor=_models_section(root)) as client:
        assert (await client.post("/predict", params={"model": "a"})).json()["version"] == "1"
        _models(root, "a", version=2)
        (root / "a" / "2").rename(root / "a" / "2.partial")
        runtime = client.runtime
        await asyncio.to_thread(runtime.models.poll_once)
        assert (await client.post("/predict", params={"model": "a"})).json()["version"] == "1"
        (root / "a" / "2.partial").rename(root / "a" / "2")
        poll = asyncio.create_task(asyncio.to_thread(runtime.models.poll_once))
        answers = []
        while not poll.done():
            answers.append(await client.post("/predict", params={"model": "a"}))
        await poll
        after = await client.post("/predict", params={"model": "a"})
    assert answers and all(r.status_code == 200 for r in answers)
    assert {r.json()["version"] for r in answers} <= {"1", "2"}
    assert after.json()["version"] == "2"


def test_fifty_concurrent_requests_for_a_cold_model_load_it_once(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "a", "b")
    gate = tmp_path / "gate"
    predictor = {"config": {"gate": str(gate)}, "threads_per_process": 64}
    predictor.update(_models_section(root))
    spec = write_spec(tmp_path, "many_models.py", predictor=predictor)
    with RuntimeProcess(spec, env={**os.environ, "TMPDIR": str(tmp_path)}) as api:
        requests = Metric.MODEL_CACHE_REQUESTS + "_total"

        def post(_: int) -> httpx.Response:
            return api.post(params={"model": "a"}, json={})

        with ThreadPoolExecutor(50) as pool:
            answers = pool.map(post, range(50))
            api.wait_for(
                lambda: _value(api.get("/metrics").text, requests, result="coalesced") == 49,
                what="49 requests waiting on the first one's load",
            )
            gate.touch()
            answers = list(answers)
        metrics = api.get("/metrics").text
        unknown = api.post(params={"model": "zebra"}, json={})
    assert [r.status_code for r in answers] == [200] * 50
    assert {r.json()["model"] for r in answers} == {"a-weights"}
    assert _value(metrics, Metric.MODEL_LOADS + "_total", model="a", outcome="ok") == 1
    assert _value(metrics, requests, model="a", result="miss") == 1
    assert unknown.status_code == 404 and unknown.json()["models"] == ["a", "b"]


def test_a_predictor_without_load_model_fails_to_load_saying_what_to_add(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "a")
    spec = write_spec(tmp_path, "models_no_loader.py", predictor=_models_section(root))
    api = RuntimeProcess(spec, wait=False)
    with api:
        assert api.exit_code() != 0
    assert (
        "models_no_loader.py: PythonPredictor must define load_model(self, model_path)"
        in api.output()
    )


async def test_python_client_without_predictor_models_is_an_error() -> None:
    async with serving("many_models.py") as client:
        runtime = client.runtime
    assert runtime.failure is not None
    assert "__init__ takes python_client, which needs predictor.models" in str(runtime.failure)


async def test_init_may_load_a_model_already(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "a", "b")
    predictor = {"config": {"warm": "b"}, **_models_section(root)}
    async with serving("many_models.py", predictor=predictor) as client:
        described = (await client.get("/predict")).json()
    assert {m["name"]: m["loaded"] for m in described["models"]} == {"a": [], "b": [1]}


async def test_a_model_hook_with_the_wrong_arguments_is_named(tmp_path: Path) -> None:
    root = _models(tmp_path / "models", "a")
    async with serving("models_bad_hook.py", predictor=_models_section(root)) as client:
        runtime = client.runtime
    assert "models_bad_hook.py: PythonPredictor.model_size: missing required argument 'path'" in (
        str(runtime.failure)
    )


async def test_a_single_model_predictor_may_have_a_load_model_of_its_own() -> None:
    async with serving("own_load_model.py") as client:
        r = await client.post("/predict", json={})
    assert r.json() == {"weights": [1, 2]}


async def test_a_plain_predictor_still_takes_config_alone() -> None:
    async with serving("echo.py") as client:
        r = await client.post("/predict", json=[1])
    assert r.status_code == 200 and client.runtime.models is None
