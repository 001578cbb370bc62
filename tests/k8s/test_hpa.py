"""The HPA: metric, target, bounds, and the behavior block that mimics Cortex's step limits."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

import kubernetes_validate
import pytest

from cortex.errors import SpecError
from cortex.k8s import IN_FLIGHT_METRIC, Autoscaler, OperatorSettings
from cortex.k8s import render_hpa as _render_hpa
from cortex.k8s.hpa import quantity
from cortex.spec import RealtimeAPI, parse_quantity
from cortex.spec.units import QUANTITY_PATTERN
from tests.k8s.conftest import make_api, owner_of, validate_k8s


def render_hpa(api: RealtimeAPI, settings: OperatorSettings | None = None) -> dict[str, Any]:
    return _render_hpa(api, owner_of(api), settings or OperatorSettings())


def test_hpa_scales_the_realtimeapi_between_min_and_max_replicas() -> None:
    spec = render_hpa(make_api("iris", autoscaling={"min_replicas": 2, "max_replicas": 8}))["spec"]

    assert spec["scaleTargetRef"] == {
        "apiVersion": "cortex.dev/v1alpha1",
        "kind": "RealtimeAPI",
        "name": "iris",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 8)


def test_hpa_targets_the_averaged_in_flight_metric_per_pod() -> None:
    [metric] = render_hpa(make_api(autoscaling={"target_replica_concurrency": 3}))["spec"][
        "metrics"
    ]

    assert metric == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "cortex_in_flight_requests_avg"},
            "target": {"type": "AverageValue", "averageValue": "3"},
        },
    }
    assert IN_FLIGHT_METRIC == "cortex_in_flight_requests_avg"


def test_default_target_is_processes_times_threads() -> None:
    api = make_api(predictor={"processes_per_replica": 2, "threads_per_process": 3})

    [metric] = render_hpa(api)["spec"]["metrics"]

    assert metric["pods"]["target"]["averageValue"] == "6"


@pytest.mark.parametrize(
    ("value", "expected"), [(1, "1"), (2.5, "2500m"), (0.05, "50m"), (0.0005, "0.0005")]
)
def test_fractional_targets_are_quantities(value: float, expected: str) -> None:
    text = quantity(value)

    assert text == expected
    assert parse_quantity(text) == Decimal(str(value))


def test_the_cpu_autoscaler_scales_on_cpu_utilisation() -> None:
    api = make_api(compute={"cpu": "1"})

    [metric] = render_hpa(api, OperatorSettings(autoscaler=Autoscaler.CPU))["spec"]["metrics"]

    assert metric == {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }


def test_cpu_fallback_without_a_cpu_request_is_a_spec_error() -> None:
    api = make_api("iris", compute={"cpu": None})

    with pytest.raises(SpecError, match=r"api 'iris': compute\.cpu is null.*set compute\.cpu"):
        render_hpa(api, OperatorSettings(autoscaler=Autoscaler.CPU))


def _replicas_allowed(rules: dict[str, Any], current: int, up: bool) -> int:
    """What the HPA allows in one period (kubernetes horizontal.go, selectPolicy Max)."""
    limits = []
    for policy in rules["policies"]:
        value = policy["value"]
        if policy["type"] == "Pods":
            limits.append(current + value if up else current - value)
        elif up:
            limits.append(math.ceil(current * (1 + value / 100)))
        else:
            limits.append(int(current * (1 - value / 100)))
    return max(limits) if up else min(limits)


@pytest.mark.parametrize(("up_factor", "down_factor"), [(1.5, 0.75), (2, 0.5), (3, 0), (1.1, 0.9)])
def test_hpa_behavior_matches_cortex_step_limits(up_factor: float, down_factor: float) -> None:
    api = make_api(
        autoscaling={
            "max_upscale_factor": up_factor,
            "max_downscale_factor": down_factor,
            "upscale_stabilization_period": "2m",
            "downscale_stabilization_period": "10m",
        }
    )

    behavior = render_hpa(api)["spec"]["behavior"]

    up, down = behavior["scaleUp"], behavior["scaleDown"]
    assert (up["stabilizationWindowSeconds"], down["stabilizationWindowSeconds"]) == (120, 600)
    for rules in (up, down):
        assert rules["selectPolicy"] == "Max"
        assert {policy["periodSeconds"] for policy in rules["policies"]} == {15}
        assert "tolerance" not in rules
    assert (
        up["policies"][1]
        == down["policies"][1]
        == {"type": "Pods", "value": 1, "periodSeconds": 15}
    )
    for current in range(1, 60):
        # Cortex: up to max(cur + 1, ceil(cur * factor)) ...
        # (float64 arithmetic on both sides, as in Cortex's and Kubernetes' Go code)
        assert _replicas_allowed(up, current, up=True) == max(
            current + 1, math.ceil(current * up_factor)
        )
        # ... and down to min(cur - 1, ceil(cur * factor)), which the HPA floors instead.
        cortex_floor = min(current - 1, math.ceil(current * down_factor))
        assert cortex_floor - 1 <= _replicas_allowed(down, current, up=False) <= cortex_floor


def test_stabilization_windows_are_capped_at_the_hpa_limit_of_an_hour() -> None:
    api = make_api(autoscaling={"downscale_stabilization_period": "2h"})

    assert render_hpa(api)["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 3600


def test_tiny_factors_still_allow_one_percent() -> None:
    api = make_api(autoscaling={"max_upscale_factor": 1.001, "max_downscale_factor": 0.999})

    behavior = render_hpa(api)["spec"]["behavior"]

    assert behavior["scaleUp"]["policies"][0]["value"] == 1
    assert behavior["scaleDown"]["policies"][0]["value"] == 1


def test_tolerances_are_emitted_only_when_the_cluster_supports_them() -> None:
    api = make_api(autoscaling={"upscale_tolerance": 0.1, "downscale_tolerance": 0.02})

    behavior = render_hpa(api, OperatorSettings(hpa_tolerance=True))["spec"]["behavior"]

    assert behavior["scaleUp"]["tolerance"] == "100m"
    assert behavior["scaleDown"]["tolerance"] == "20m"
    assert "tolerance" not in render_hpa(api)["spec"]["behavior"]["scaleUp"]


def test_hpa_tolerance_is_unknown_to_older_kubernetes() -> None:
    hpa = render_hpa(make_api(), OperatorSettings(hpa_tolerance=True))

    validate_k8s(hpa, "1.35.0")
    validate_k8s(hpa, "1.37.0")
    # Alpha (and off) in 1.33 and 1.34; unknown before: hence the setting, off by default.
    with pytest.raises(kubernetes_validate.ValidationError, match="tolerance"):
        validate_k8s(hpa, "1.32.0")
    with pytest.raises(kubernetes_validate.ValidationError, match="tolerance"):
        validate_k8s(hpa, "1.29.0")


@pytest.mark.parametrize("value", [1, 2.5, 0.05, 30000, 0.001])
def test_every_quantity_matches_the_kubernetes_syntax(value: float) -> None:
    assert re.fullmatch(QUANTITY_PATTERN, quantity(value))
