"""What ``min_replicas: 0`` changes in the rendered children, and what it leaves alone."""

from __future__ import annotations

from cortex.k8s import Autoscaler, OperatorSettings, render
from tests.k8s.conftest import by_kind, make_api, owner_of, render_api

KEDA = OperatorSettings(autoscaler=Autoscaler.KEDA)
ZERO = {"min_replicas": 0, "max_replicas": 4}


def test_the_hpa_of_an_api_that_scales_to_zero_keeps_one_replica_at_least() -> None:
    hpa = by_kind(render_api(make_api(autoscaling=ZERO)))["HorizontalPodAutoscaler"]

    assert hpa["spec"]["minReplicas"] == 1


def test_an_api_that_scales_to_zero_starts_with_one_replica() -> None:
    deployment = by_kind(render_api(make_api(autoscaling=ZERO)))["Deployment"]

    assert deployment["spec"]["replicas"] == 1


def test_keda_scales_an_awake_api_from_one_replica_and_leaves_it_alone_at_zero() -> None:
    api = make_api(autoscaling=ZERO)

    awake = by_kind(render(api, owner_of(api), KEDA, replicas=2))
    asleep = by_kind(render(api, owner_of(api), KEDA, replicas=0))

    assert awake["ScaledObject"]["spec"]["minReplicaCount"] == 1
    assert "ScaledObject" not in asleep
    assert asleep["Deployment"]["spec"]["replicas"] == 0


def test_the_hpa_stays_while_an_api_sleeps_it_does_nothing_at_zero() -> None:
    api = make_api(autoscaling=ZERO)

    asleep = by_kind(render(api, owner_of(api), OperatorSettings(), replicas=0))

    assert asleep["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 1


def test_the_scale_to_zero_fields_change_nothing_for_an_api_with_replicas() -> None:
    plain = render_api(make_api(autoscaling={"min_replicas": 1}))
    tuned = render_api(
        make_api(
            autoscaling={"min_replicas": 1, "scale_to_zero_after": "1m", "max_queue_length": 5}
        )
    )

    assert tuned == plain
