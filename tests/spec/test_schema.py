"""The JSON schema the CRD is generated from, the models' immutability, and the public API."""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic
import pytest

import cortex.spec
from cortex.spec import APISpec, RealtimeAPI, parse_specs


def _schema() -> dict[str, Any]:
    return APISpec.model_json_schema()


def _prop(model: str, field: str) -> dict[str, Any]:
    prop: dict[str, Any] = _schema()["$defs"][model]["properties"][field]
    return prop


def test_api_spec_schema_is_json_without_name_or_kind() -> None:
    schema = _schema()

    json.dumps(schema)
    assert list(schema["properties"]) == [
        "predictor",
        "compute",
        "autoscaling",
        "update_strategy",
        "networking",
        "project",
    ]
    assert schema["required"] == ["predictor"]
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("model", "field", "default"),
    [
        ("Autoscaling", "window", "60s"),
        ("Autoscaling", "downscale_stabilization_period", "5m"),
        ("Autoscaling", "upscale_stabilization_period", "1m"),
    ],
)
def test_durations_are_strings_with_a_pattern_in_the_schema(
    model: str, field: str, default: str
) -> None:
    prop = _prop(model, field)

    assert prop["type"] == "string"
    assert prop["default"] == default
    assert re.fullmatch(prop["pattern"], default)


def test_batch_interval_is_a_string_in_the_schema() -> None:
    assert _prop("ServerSideBatching", "batch_interval")["type"] == "string"


def test_quantities_are_strings_in_the_schema() -> None:
    cpu = _prop("Compute", "cpu")

    assert {"type": "null"} in cpu["anyOf"]
    [string] = [s for s in cpu["anyOf"] if s.get("type") == "string"]
    assert re.fullmatch(string["pattern"], "200m")
    assert cpu["default"] == "200m"


def test_update_strategy_values_are_int_or_string_in_the_schema() -> None:
    surge = _prop("UpdateStrategy", "max_surge")

    assert surge["x-kubernetes-int-or-string"] is True
    assert surge["default"] == "25%"


def test_project_config_map_uses_the_resource_spelling_in_the_schema() -> None:
    assert list(_schema()["$defs"]["Project"]["properties"]) == ["configMap", "sha256"]


def test_serialization_schema_also_builds() -> None:
    schema = RealtimeAPI.model_json_schema(mode="serialization")

    assert schema["$defs"]["Autoscaling"]["properties"]["window"]["type"] == "string"


def test_models_are_frozen() -> None:
    [api] = parse_specs("- {name: x, kind: RealtimeAPI, predictor: {type: python, path: p.py}}")

    with pytest.raises(pydantic.ValidationError):
        api.compute.gpu = 1


def test_public_api_is_exactly_all() -> None:
    public = {name for name in vars(cortex.spec) if not name.startswith("_")}
    submodules = {"loading", "messages", "models", "multimodel", "units", "annotations", "yamltext"}

    assert public - submodules == set(cortex.spec.__all__)
