"""Rendered manifests of typical APIs, compared with golden files and Kubernetes' schemas (the
HTTPRoute and ScaledObject with their CRDs' kept in the tests).

Routing: the CPU and GPU APIs ``gateway``, the batching ones ``ingress``, the custom image
``none``. Autoscalers: ``hpa`` (cpu-api, gpu-api, batching-api), ``cpu``
(custom-image-configmap-api) and ``keda`` (keda-batching-api). Every other routing x autoscaler
combination is rendered and validated (not kept as a golden file) by the last test.

``UPDATE_GOLDEN=1 pytest tests/k8s/test_golden.py`` rewrites the golden files; review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex.k8s import Autoscaler, OperatorSettings
from tests.k8s.conftest import (
    GATEWAY,
    INGRESS,
    KUBERNETES_VERSIONS,
    ROUTINGS,
    make_api,
    render_api,
    validate_manifest,
)

GOLDEN = Path(__file__).parent / "golden"


def _cpu() -> list[dict[str, Any]]:
    api = make_api(
        "iris",
        compute={"cpu": "500m", "mem": "1Gi"},
        autoscaling={"min_replicas": 2, "max_replicas": 10},
        networking={"hostname": "iris.ml.example.com", "timeout": "30s"},
    )
    return render_api(api, GATEWAY)


def _gpu() -> list[dict[str, Any]]:
    api = make_api(
        "gpt2",
        predictor={"config": {"model": "gpt2", "max_tokens": 64}},
        compute={"cpu": "2", "mem": "8Gi", "gpu": 1},
        autoscaling={"max_replicas": 4, "target_replica_concurrency": 4},
    )
    settings = OperatorSettings(
        routing="gateway",
        gateway=("gateway-system", "cortex"),
        gpu_node_selector={"nvidia.com/gpu.present": "true"},
        gpu_tolerations=(
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
        ),
        gpu_runtime_class="nvidia",
        gpu_shm_size="2Gi",
        sleep_action=True,
    )
    return render_api(api, settings)


def _batching() -> list[dict[str, Any]]:
    api = make_api(
        "text-embedder",
        predictor={
            "threads_per_process": 8,
            "server_side_batching": {"max_batch_size": 8, "batch_interval": "10ms"},
        },
        autoscaling={
            "target_replica_concurrency": 2.5,
            "max_upscale_factor": 2,
            "max_downscale_factor": 0.5,
            "upscale_stabilization_period": "30s",
            "downscale_stabilization_period": "10m",
        },
        update_strategy={"max_surge": 1, "max_unavailable": 0},
        networking={"endpoint": "/v1/embed"},
    )
    return render_api(api, INGRESS)


def _custom_image() -> list[dict[str, Any]]:
    api = make_api(
        "sentiment",
        predictor={
            "image": "registry.example.com/team/sentiment:1.2.0",
            "env": {"MODEL_NAME": "distilbert-base-uncased", "HF_HUB_OFFLINE": "1"},
            "env_refs": {
                "HF_TOKEN": {"secret": "hf-token", "key": "token"},
                "LABELS": {"config_map": "labels", "key": "labels.json", "optional": True},
            },
            "service_account": "sentiment-reader",
            "processes_per_replica": 2,
        },
        compute={"cpu": "1", "mem": "2Gi"},
        project={"configMap": "sentiment-project"},
    )
    return render_api(api, OperatorSettings(routing="none", autoscaler=Autoscaler.CPU))


def _keda_batching() -> list[dict[str, Any]]:
    api = make_api(
        "reranker",
        predictor={
            "processes_per_replica": 2,
            "server_side_batching": {"max_batch_size": 16, "batch_interval": "20ms"},
        },
        compute={"cpu": "2", "mem": "4Gi", "gpu": 1},
        autoscaling={"min_replicas": 2, "max_replicas": 20, "window": "2m"},
    )
    settings = dataclasses.replace(
        INGRESS,
        autoscaler=Autoscaler.KEDA,
        prometheus_url="http://kube-prometheus-stack-prometheus.monitoring.svc:9090",
    )
    return render_api(api, settings)


CASES = {
    "cpu-api": _cpu,
    "gpu-api": _gpu,
    "batching-api": _batching,
    "custom-image-configmap-api": _custom_image,
    "keda-batching-api": _keda_batching,
}


def _text(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, width=100)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_manifests_match_the_golden_file(case: str) -> None:
    text = _text(CASES[case]())
    path = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} differs from what cortex.k8s renders; if the change is intended, "
        f"run UPDATE_GOLDEN=1 pytest {__file__} and review the diff"
    )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_manifests_pass_kubernetes_validate_strict(case: str, version: str) -> None:
    for obj in CASES[case]():
        validate_manifest(obj, version)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_is_deterministic_and_json_serialisable(case: str) -> None:
    first, second = CASES[case](), CASES[case]()

    assert json.dumps(first) == json.dumps(second)
    assert json.loads(json.dumps(first)) == first


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("autoscaler", list(Autoscaler))
@pytest.mark.parametrize("routing", sorted(ROUTINGS))
def test_every_routing_and_autoscaler_renders_valid_objects(
    routing: str, autoscaler: Autoscaler, version: str
) -> None:
    api = make_api("iris", compute={"cpu": "500m", "mem": "1Gi"})
    settings = dataclasses.replace(ROUTINGS[routing], autoscaler=autoscaler)

    for obj in render_api(api, settings):
        validate_manifest(obj, version)
