"""``predictor.models``: sources, budgets and cross-field rules, with the messages users read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex.errors import SpecError
from cortex.spec import RealtimeAPI, parse_specs


def _spec(models: Any, **predictor: Any) -> str:
    api = {
        "name": "many",
        "kind": "RealtimeAPI",
        "predictor": {"type": "python", "path": "p.py", "models": models, **predictor},
    }
    return yaml.safe_dump([api])


def _parse(models: Any, base_dir: Path | None = None, **predictor: Any) -> RealtimeAPI:
    [api] = parse_specs(_spec(models, **predictor), base_dir)
    return api


def _error(models: Any, **predictor: Any) -> str:
    with pytest.raises(SpecError) as caught:
        _parse(models, **predictor)
    return str(caught.value)


def test_models_default_to_none_and_budgets_to_unlimited() -> None:
    assert _parse(None).predictor.models is None
    models = _parse({"dir": "s3://bucket/models"}).predictor.models
    assert models is not None
    assert (models.cache_size, models.disk_cache_size, models.max_byte_count) == (None, None, None)
    assert (models.poll_interval, models.label_models) == (10.0, True)


def test_max_bytes_is_a_quantity() -> None:
    models = _parse({"dir": "/models", "max_bytes": "2Gi"}).predictor.models
    assert models is not None and models.max_byte_count == 2 * 2**30


def test_paths_name_their_models() -> None:
    paths = [{"name": "iris", "path": "gs://b/iris"}, {"name": "wine.v2", "path": "/m/wine"}]
    models = _parse({"paths": paths}).predictor.models
    assert models is not None and models.paths is not None
    named = [(m.name, m.path) for m in models.paths]
    assert named == [("iris", "gs://b/iris"), ("wine.v2", "/m/wine")]


def test_a_relative_source_is_a_folder_of_the_project(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text("")
    (tmp_path / "models").mkdir()
    assert _parse({"dir": "models"}, tmp_path).predictor.models is not None
    with pytest.raises(SpecError) as caught:
        _parse({"dir": "missing"}, tmp_path)
    looked = tmp_path / "missing"
    assert f"predictor.models.dir 'missing' is not a folder (looked for {looked})" in str(
        caught.value
    )


RULES = [
    ({}, "predictor.models must set exactly one of path, paths and dir"),
    (
        {"path": "/m/a", "dir": "/m"},
        "predictor.models must set exactly one of path, paths and dir (it sets path and dir)",
    ),
    ({"paths": []}, "predictor.models.paths must list at least one {name, path}"),
    (
        {"paths": [{"name": "a", "path": "/m/a"}, {"name": "a", "path": "/m/b"}]},
        "predictor.models.paths.1.name 'a' is used by two models; give each model its own name",
    ),
    (
        {"paths": [{"name": "-a", "path": "/m/a"}]},
        "predictor.models.paths.0.name '-a' must be a model name",
    ),
    (
        {"paths": [{"name": "a"}]},
        "predictor.models.paths.0.path is required",
    ),
    (
        {"dir": "../outside"},
        "predictor.models.dir '../outside' must be a URL, an absolute path or a folder inside "
        "the project folder",
    ),
    ({"dir": ""}, "predictor.models.dir '' must be a folder or a URL such as s3://bucket/models"),
    ({"dir": "/m", "cache_size": 0}, "predictor.models.cache_size 0 must be between 1 and"),
    (
        {"dir": "/m", "cache_size": 4, "disk_cache_size": 2},
        "predictor.models.cache_size 4 must be <= predictor.models.disk_cache_size (2)",
    ),
    ({"dir": "/m", "max_bytes": "lots"}, "predictor.models.max_bytes 'lots' "),
    ({"dir": "/m", "max_bytes": "0"}, "predictor.models.max_bytes '0' must be at least one byte"),
    (
        {"dir": "/m", "poll_interval": "10ms"},
        "predictor.models.poll_interval '10ms' must be 0 (no polling) or at least 100ms",
    ),
    ({"dir": "/m", "label_models": "no"}, "predictor.models.label_models 'no' must be true or"),
    ({"dir": "/m", "cache": 3}, "unknown field 'predictor.models.cache'"),
]


@pytest.mark.parametrize(("models", "message"), RULES)
def test_models_rules_name_the_field_the_value_and_the_fix(models: Any, message: str) -> None:
    assert message in _error(models)


def test_a_multi_model_api_runs_one_process() -> None:
    error = _error({"dir": "/m"}, processes_per_replica=2)
    assert (
        "predictor.processes_per_replica 2 must be 1 with predictor.models (each process would "
        "hold its own cache); raise threads_per_process instead"
    ) in error


def test_a_multi_model_api_does_not_batch() -> None:
    batching = {"max_batch_size": 4, "batch_interval": "10ms"}
    error = _error({"dir": "/m"}, server_side_batching=batching)
    assert "predictor.server_side_batching cannot be combined with predictor.models" in error
