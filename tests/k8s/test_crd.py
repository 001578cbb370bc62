"""The RealtimeAPI CRD: generated from the models, structural, current, and checking CRs."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel

from cortex.errors import SpecError
from cortex.k8s import crd_yaml, custom_resource_definition
from cortex.k8s.schema import structural_schema
from cortex.spec import APISpec, parse_api_spec
from tests.k8s.conftest import KUBERNETES_VERSIONS, OPERATOR_DIR, REPO, cr_validator, validate_k8s

_JUNCTORS = ("anyOf", "allOf", "oneOf", "not")
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def _version() -> dict[str, Any]:
    [version] = custom_resource_definition()["spec"]["versions"]
    return version


def _open_api() -> dict[str, Any]:
    schema: dict[str, Any] = _version()["schema"]["openAPIV3Schema"]
    return schema


def _spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = _open_api()["properties"]["spec"]
    return schema


def test_committed_crd_is_up_to_date() -> None:
    committed = (OPERATOR_DIR / "crd.yaml").read_text(encoding="utf-8")

    assert committed == crd_yaml(), (
        "operator/crd.yaml is out of date with cortex/spec: run `python scripts/gen_crd.py` "
        "and commit the result"
    )


def test_gen_crd_check_reports_an_up_to_date_file() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/gen_crd.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_crd_passes_kubernetes_validate_strict(version: str) -> None:
    validate_k8s(custom_resource_definition(), version)


def test_crd_names_the_realtimeapi_resource() -> None:
    spec = custom_resource_definition()["spec"]

    assert custom_resource_definition()["metadata"]["name"] == "realtimeapis.cortex.dev"
    assert spec["group"] == "cortex.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "RealtimeAPI"
    assert spec["names"]["plural"] == "realtimeapis"
    assert spec["names"]["singular"] == "realtimeapi"
    assert spec["names"]["shortNames"] == ["rapi"]
    version = _version()
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }


def test_printer_columns_show_status_replicas_endpoint_and_age() -> None:
    columns = [(c["name"], c["jsonPath"]) for c in _version()["additionalPrinterColumns"]]

    assert columns == [
        ("Status", ".status.status"),
        ("Requested", ".status.requested"),
        ("Ready", ".status.ready"),
        ("Up-to-date", ".status.upToDate"),
        ("Endpoint", ".status.endpoint"),
        ("Age", ".metadata.creationTimestamp"),
    ]
    status = _open_api()["properties"]["status"]["properties"]
    for _, path in columns[:-1]:
        assert path.removeprefix(".status.") in status


def _structural_violations(node: dict[str, Any], path: str, in_junctor: bool = False) -> list[str]:
    """Kubernetes' structural-schema rules (apiextensions-apiserver), as far as they apply."""
    found: list[str] = []
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if in_junctor:
        for key in ("type", "description", "default", "nullable", "additionalProperties"):
            if key in node:
                found.append(f"{path}: {key} inside a junctor")
        return found
    for key in ("$ref", "$defs", "definitions", "const"):
        if key in node:
            found.append(f"{path}: {key} is not allowed")
    if not node.get("type") and not int_or_string and not preserve:
        found.append(f"{path}: no type")
    if node.get("nullable") and not node.get("type"):
        found.append(f"{path}: nullable without a type")
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not isinstance(node[key], bool):
            found.append(f"{path}: {key} must be a boolean in OpenAPI v3.0")
    if int_or_string and node.get("anyOf") not in (None, _INT_OR_STRING):
        found.append(f"{path}: int-or-string anyOf must be exactly integer, string")
    for junctor in _JUNCTORS:
        if junctor in node and not (int_or_string and junctor == "anyOf"):
            branches = node[junctor] if isinstance(node[junctor], list) else [node[junctor]]
            for branch in branches:
                found += _structural_violations(branch, f"{path}.{junctor}", in_junctor=True)
    extra = node.get("additionalProperties")
    allows_fields = node.get("properties") or isinstance(extra, dict) or preserve
    if node.get("type") == "object" and not allows_fields:
        found.append(f"{path}: object with neither properties nor preserve-unknown-fields")
    if isinstance(extra, bool):
        found.append(f"{path}: additionalProperties must be a schema")
    if extra is not None and node.get("properties"):
        found.append(f"{path}: properties and additionalProperties together")
    for name, prop in node.get("properties", {}).items():
        found += _structural_violations(prop, f"{path}.{name}")
    if isinstance(extra, dict):
        found += _structural_violations(extra, f"{path}.*")
    if "items" in node:
        found += _structural_violations(node["items"], f"{path}[]")
    return found


def test_resource_schema_is_structural() -> None:
    assert _structural_violations(_open_api(), "openAPIV3Schema") == []


def test_metadata_schema_restricts_only_the_name() -> None:
    metadata = _open_api()["properties"]["metadata"]

    assert set(metadata["properties"]) <= {"name", "generateName"}


def test_spec_schema_has_every_field_of_the_api_spec() -> None:
    spec = _spec_schema()

    for model, schema in (
        (APISpec, spec),
        (APISpec.model_fields["predictor"].annotation, spec["properties"]["predictor"]),
    ):
        assert isinstance(model, type) and issubclass(model, BaseModel)
        fields = [info.alias or name for name, info in model.model_fields.items()]
        extra = ["replicas"] if model is APISpec else []  # the /scale subresource's field
        assert list(schema["properties"]) == fields + extra


def test_free_form_config_and_string_env() -> None:
    predictor = _spec_schema()["properties"]["predictor"]["properties"]

    assert predictor["config"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert predictor["env"] == {"type": "object", "additionalProperties": {"type": "string"}}


def test_surge_and_unavailable_are_int_or_string() -> None:
    strategy = _spec_schema()["properties"]["update_strategy"]["properties"]

    for field in ("max_surge", "max_unavailable"):
        assert strategy[field]["x-kubernetes-int-or-string"] is True
        assert strategy[field]["anyOf"] == _INT_OR_STRING
        assert strategy[field]["default"] == "25%"


def _apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Kubernetes' structural defaulting: absent fields get their default, then recurse."""
    if not isinstance(value, dict) or "properties" not in schema:
        return value
    out = dict(value)
    for name, prop in schema["properties"].items():
        if name not in out and "default" in prop:
            out[name] = copy.deepcopy(prop["default"])
        if name in out:
            out[name] = _apply_defaults(prop, out[name])
    return out


@pytest.mark.parametrize(
    "spec",
    [
        {"predictor": {"type": "python", "path": "p.py"}},
        {"predictor": {"type": "python", "path": "p.py"}, "autoscaling": {"min_replicas": 2}},
        {"predictor": {"type": "python", "path": "p.py"}, "compute": {"cpu": None, "gpu": 1}},
    ],
)
def test_schema_defaults_agree_with_the_model_defaults(spec: dict[str, Any]) -> None:
    defaulted = _apply_defaults(_spec_schema(), spec)

    assert defaulted != spec
    assert parse_api_spec("iris", defaulted) == parse_api_spec("iris", spec)


def _cr(spec: dict[str, Any], name: str = "iris") -> dict[str, Any]:
    return {
        "apiVersion": "cortex.dev/v1alpha1",
        "kind": "RealtimeAPI",
        "metadata": {"name": name, "namespace": "ml", "labels": {"team": "a"}},
        "spec": spec,
    }


PREDICTOR = {"type": "python", "path": "predictor.py"}
VALID = {
    "minimal": {"predictor": PREDICTOR},
    "full": {
        "predictor": {
            **PREDICTOR,
            "config": {"model": "gpt2", "layers": [1, 2], "nested": {"a": None}},
            "processes_per_replica": 2,
            "threads_per_process": 8,
            "server_side_batching": {"max_batch_size": 8, "batch_interval": "10ms"},
            "env": {"HF_HOME": "/cache"},
            "image": "example.com/me/api:1",
            "python_path": "src",
            "log_level": "debug",
        },
        "compute": {"cpu": "1500m", "mem": "2Gi", "gpu": 1},
        "autoscaling": {
            "min_replicas": 2,
            "max_replicas": 20,
            "init_replicas": 3,
            "max_replica_concurrency": 64,
            "target_replica_concurrency": 2.5,
            "window": "2m",
            "downscale_stabilization_period": "10m",
            "upscale_stabilization_period": "30s",
            "max_downscale_factor": 0.5,
            "max_upscale_factor": 3,
            "downscale_tolerance": 0.1,
            "upscale_tolerance": 0,
        },
        "update_strategy": {"max_surge": 2, "max_unavailable": "0%"},
        "networking": {"endpoint": "/v1/iris", "local_port": 9000},
        "project": {"configMap": "iris-project"},
    },
    "nulls": {
        "predictor": {**PREDICTOR, "server_side_batching": None},
        "compute": {"cpu": None, "mem": None},
        "autoscaling": {"init_replicas": None, "target_replica_concurrency": None},
        "networking": {"endpoint": None},
        "project": {"configMap": None},
    },
}
INVALID = {
    "min_replicas as a string": {"predictor": PREDICTOR, "autoscaling": {"min_replicas": "2"}},
    "unknown field": {"predictor": {**PREDICTOR, "procesess_per_replica": 2}},
    "no path": {"predictor": {"type": "python"}},
    "no predictor": {"compute": {"cpu": "1"}},
    "other predictor type": {"predictor": {**PREDICTOR, "type": "tensorflow"}},
    "negative gpu": {"predictor": PREDICTOR, "compute": {"gpu": -1}},
    "bad quantity": {"predictor": PREDICTOR, "compute": {"mem": "lots"}},
    "bad duration": {"predictor": PREDICTOR, "autoscaling": {"window": "1 minute"}},
    "bad surge": {"predictor": PREDICTOR, "update_strategy": {"max_surge": "quarter"}},
    "non-string env": {"predictor": {**PREDICTOR, "env": {"A": ["x"]}}},
    "upscale factor 1": {"predictor": PREDICTOR, "autoscaling": {"max_upscale_factor": 1}},
    "downscale factor 1": {"predictor": PREDICTOR, "autoscaling": {"max_downscale_factor": 1}},
    "target 0": {"predictor": PREDICTOR, "autoscaling": {"target_replica_concurrency": 0}},
    "batch of 1": {
        "predictor": {
            **PREDICTOR,
            "server_side_batching": {"max_batch_size": 1, "batch_interval": "1ms"},
        }
    },
    "log level": {"predictor": {**PREDICTOR, "log_level": "trace"}},
}


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_resources_pass_the_crd_schema_and_parse(case: str) -> None:
    errors = list(cr_validator(_open_api()).iter_errors(_cr(VALID[case])))

    assert errors == []
    assert parse_api_spec("iris", VALID[case]).name == "iris"


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_resources_fail_the_crd_schema_as_they_fail_parsing(case: str) -> None:
    errors = list(cr_validator(_open_api()).iter_errors(_cr(INVALID[case])))

    assert errors, f"the CRD schema accepted: {case}"
    with pytest.raises(SpecError):
        parse_api_spec("iris", INVALID[case])


@pytest.mark.parametrize(("name", "ok"), [("iris", True), ("Iris", False), ("a" * 43, False)])
def test_resource_names_follow_the_api_name_rule(name: str, ok: bool) -> None:
    errors = list(cr_validator(_open_api()).iter_errors(_cr({"predictor": PREDICTOR}, name)))

    assert (errors == []) is ok


def test_status_schema_accepts_what_the_operator_writes() -> None:
    resource = _cr({"predictor": PREDICTOR})
    resource["status"] = {
        "status": "error (image pull)",
        "message": "Back-off pulling image example.com/me/api:1",
        "requested": 2,
        "ready": 0,
        "upToDate": 2,
        "endpoint": "/iris",
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "ImagePullBackOff",
                "message": "...",
                "lastTransitionTime": "2026-11-27T10:00:00Z",
                "observedGeneration": 3,
            }
        ],
        "replicas": 2,
        "selector": "cortex.dev/api-name=iris",
    }

    assert list(cr_validator(_open_api()).iter_errors(resource)) == []
    resource["status"]["ready"] = "none"
    assert list(cr_validator(_open_api()).iter_errors(resource)) != []


def test_a_model_the_crd_cannot_express_fails_generation() -> None:
    class Either(BaseModel):
        value: int | str

    with pytest.raises(ValueError, match=r"Either\.value: only 'anyOf: \[X, null\]'"):
        structural_schema(Either)
