"""The KEDA ScaledObject of the ``keda`` autoscaler: what it scales, on which query, how fast."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from cortex.contracts import Metric, MetricLabel
from cortex.k8s import Autoscaler, OperatorSettings, render_hpa, render_scaled_object
from cortex.k8s.scaledobject import in_flight_query
from cortex.spec import RealtimeAPI
from tests.k8s.conftest import by_kind, make_api, owner_of, render_api, validate_k8s

KEDA = OperatorSettings(autoscaler=Autoscaler.KEDA, prometheus_url="http://prom.monitoring:9090")


def scaled_object(api: RealtimeAPI, settings: OperatorSettings = KEDA) -> dict[str, Any]:
    return render_scaled_object(api, owner_of(api), settings)


def trigger(api: RealtimeAPI) -> dict[str, Any]:
    [found] = scaled_object(api)["spec"]["triggers"]
    return found


def test_keda_renders_a_scaled_object_instead_of_an_hpa() -> None:
    kinds = [obj["kind"] for obj in render_api(make_api(), KEDA)]

    assert kinds == ["Deployment", "Service", "ScaledObject"]  # routing "none" by default


def test_it_scales_the_realtime_api_scale_subresource_within_the_spec_bounds() -> None:
    api = make_api("iris", autoscaling={"min_replicas": 2, "max_replicas": 9})

    spec = scaled_object(api)["spec"]

    assert spec["scaleTargetRef"] == {
        "apiVersion": "cortex.dev/v1alpha1",
        "kind": "RealtimeAPI",
        "name": "iris",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 9)


def test_the_trigger_averages_in_flight_requests_per_pod_at_the_target() -> None:
    api = make_api("iris", autoscaling={"target_replica_concurrency": 2.5})

    found = trigger(api)

    assert found["type"] == "prometheus"
    assert found["metricType"] == "AverageValue"  # the HPA divides the total by the replicas
    assert found["metadata"]["threshold"] == "2.5"  # Go's ParseFloat: no "2500m"
    assert found["metadata"]["serverAddress"] == "http://prom.monitoring:9090"


@pytest.mark.parametrize(("window", "text"), [("60s", "[1m]"), ("90s", "[90s]"), ("10m", "[10m]")])
def test_the_query_honours_the_api_window(window: str, text: str) -> None:
    api = make_api("iris", autoscaling={"window": window})

    assert in_flight_query(api, "ml") == (
        f'sum(avg_over_time({Metric.IN_FLIGHT}{{namespace="ml",{MetricLabel.API_NAME}="iris"}}'
        f"{text}))"
    )


def test_the_query_selects_only_this_api_in_its_namespace() -> None:
    api = make_api("iris")
    query = trigger(api)["metadata"]["query"]

    assert 'namespace="ml"' in query  # owner_of puts the API in ml
    assert f'{MetricLabel.API_NAME}="iris"' in query
    assert in_flight_query(api, "prod") != in_flight_query(api, "ml")


def test_the_behaviour_is_the_hpas_step_limits_and_windows() -> None:
    api = make_api(
        "iris",
        compute={"cpu": "1"},
        autoscaling={"max_upscale_factor": 2, "downscale_stabilization_period": "10m"},
    )
    settings = OperatorSettings(autoscaler=Autoscaler.KEDA, hpa_tolerance=True)

    config = scaled_object(api, settings)["spec"]["advanced"]["horizontalPodAutoscalerConfig"]

    assert config["behavior"] == render_hpa(api, owner_of(api), settings)["spec"]["behavior"]
    assert config["behavior"]["scaleUp"]["policies"][0]["value"] == 100
    assert config["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600


def test_a_batching_api_targets_a_full_batch_per_process() -> None:
    api = make_api(
        "embed",
        predictor={
            "processes_per_replica": 2,
            "server_side_batching": {"max_batch_size": 8, "batch_interval": "10ms"},
        },
    )

    assert trigger(api)["metadata"]["threshold"] == "16"


def test_the_scaled_object_carries_the_children_metadata() -> None:
    api = make_api("iris")
    objects = by_kind(render_api(api, KEDA))

    meta, deployment = objects["ScaledObject"]["metadata"], objects["Deployment"]["metadata"]

    assert meta["name"] == "api-iris"
    assert meta["labels"] == deployment["labels"]
    assert meta["ownerReferences"] == deployment["ownerReferences"]


def test_the_scaled_object_passes_the_keda_schema() -> None:
    validate_k8s(scaled_object(make_api("iris")), "1.29.0")


def test_the_keda_schema_rejects_what_keda_would() -> None:
    obj = scaled_object(make_api("iris"))
    obj["spec"]["triggers"][0]["metadata"]["threshold"] = 2.5  # not a string

    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(obj, "1.29.0")
