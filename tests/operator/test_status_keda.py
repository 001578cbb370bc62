"""A KEDA ScaledObject's conditions as the API's ScalingActive (cortex.operator.status, pure)."""

from __future__ import annotations

import datetime
from typing import Any

from cortex.operator import status

NOW = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC)
READY = {"type": "Ready", "status": "True", "reason": "ScaledObjectReady", "message": ""}
IDLE = {
    "type": "Active",
    "status": "False",
    "reason": "ScalerNotActive",
    "message": "Scaling is not performed because triggers are not active",
}
BUSY = {
    "type": "Active",
    "status": "True",
    "reason": "ScalerActive",
    "message": "Scaling is performed because triggers are active",
}
NO_FALLBACK = {"type": "Fallback", "status": "False", "reason": "NoFallbackFound", "message": ""}
UNREACHABLE = {
    "type": "Ready",
    "status": "False",
    "reason": "ScaledObjectCheckFailed",
    "message": "error querying prometheus: dial tcp: connection refused",
}


def scaling_active(*conditions: dict[str, Any]) -> status.Condition | None:
    body = {"status": {"conditions": list(conditions)}}
    return status.HPAFacts.of_scaled_object(body).scaling_active


def test_a_ready_scaled_object_scales_even_without_load() -> None:
    for active in (IDLE, BUSY):
        found = scaling_active(READY, active, NO_FALLBACK)

        assert found is not None
        assert (found.type, found.status, found.reason) == (
            "ScalingActive",
            "True",
            "ScaledObjectReady",
        )
        assert found.message == active["message"]


def test_a_scaled_object_that_is_not_ready_cannot_scale_and_says_why() -> None:
    found = scaling_active(UNREACHABLE, IDLE)

    assert found == status.Condition(
        "ScalingActive",
        "False",
        "ScaledObjectCheckFailed",
        "the ScaledObject is not ready: error querying prometheus: dial tcp: connection refused",
    )


def test_a_fallback_is_not_scaling_on_the_metric() -> None:
    fallback = {"type": "Fallback", "status": "True", "reason": "FallbackExists", "message": ""}

    found = scaling_active(READY, IDLE, fallback)

    assert found == status.Condition(
        "ScalingActive", "False", "FallbackExists", "KEDA is using its fallback replicas"
    )


def test_keda_not_reporting_yet_is_pending() -> None:
    assert scaling_active() is None
    assert scaling_active({"type": "Ready", "status": "Unknown"}) is None


def test_the_api_status_shows_what_the_scaled_object_says() -> None:
    deployment = status.DeploymentFacts(
        requested=1, replicas=1, ready=1, up_to_date=1, rolled_out=True, spec_hash=None
    )
    facts = status.HPAFacts.of_scaled_object({"status": {"conditions": [UNREACHABLE]}})

    summary = status.summarize(
        deployment, [], facts, min_replicas=1, init_replicas=1, now=NOW, stall_after=900.0
    )

    assert summary.status == "live"
    assert summary.message.startswith("the autoscaler cannot scale: the ScaledObject is not")
    [scaling] = [c for c in summary.conditions if c.type == "ScalingActive"]
    assert scaling.status == "False"
