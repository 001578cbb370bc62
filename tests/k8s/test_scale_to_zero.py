"""What ``min_replicas: 0`` changes in the rendered children, and what it leaves alone."""

from __future__ import annotations

import pytest

from cortex import errors
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


ACTIVATOR = ("cortex", "cortex-activator")
GATEWAY_ZERO = OperatorSettings(
    routing="gateway", gateway=("gateway-system", "cortex"), activator=ACTIVATOR
)


def test_the_route_of_an_api_that_scales_to_zero_points_at_the_activator() -> None:
    route = by_kind(render_api(make_api(autoscaling=ZERO), GATEWAY_ZERO))["HTTPRoute"]

    [rule] = route["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"name": "cortex-activator", "port": 8888, "namespace": "cortex"}
    ]
    assert rule["timeouts"]["request"] == "600s"  # networking.timeout + scale_from_zero_timeout


def test_the_route_of_an_api_with_replicas_goes_straight_to_its_service() -> None:
    route = by_kind(render_api(make_api(), GATEWAY_ZERO))["HTTPRoute"]

    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "api-iris", "port": 8888}]


def test_an_api_at_zero_without_an_activator_is_a_spec_error_naming_the_fix() -> None:
    settings = OperatorSettings(routing="gateway", gateway=("gateway-system", "cortex"))

    with pytest.raises(errors.SpecError, match=r"min_replicas 0 needs the activator.*activator"):
        render_api(make_api(autoscaling=ZERO), settings)


def test_an_ingress_reaches_the_activator_only_in_its_own_namespace() -> None:
    here = OperatorSettings(routing="ingress", ingress_class="nginx", activator=("ml", "act"))
    there = OperatorSettings(routing="ingress", ingress_class="nginx", activator=ACTIVATOR)
    api = make_api(autoscaling=ZERO)

    ingress = by_kind(render(api, owner_of(api), here))["Ingress"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "act", "port": {"number": 8888}}}
    with pytest.raises(errors.SpecError, match="namespace"):
        render(api, owner_of(api), there)


def test_keda_counts_the_requests_the_activators_hold() -> None:
    api = make_api(autoscaling=ZERO)
    [trigger] = by_kind(render(api, owner_of(api), KEDA, replicas=1))["ScaledObject"]["spec"][
        "triggers"
    ]

    query = trigger["metadata"]["query"]
    assert 'cortex_activator_held_requests{api_namespace="ml",api_name="iris"}' in query
    assert query.count("or vector(0)") == 2


def test_the_activator_setting_is_a_namespace_and_a_name() -> None:
    settings = OperatorSettings.from_env({"CORTEX_OPERATOR_ACTIVATOR": "cortex/act"})

    assert settings.activator == ("cortex", "act")
    with pytest.raises(errors.CortexError, match="CORTEX_OPERATOR_ACTIVATOR"):
        OperatorSettings.from_env({"CORTEX_OPERATOR_ACTIVATOR": "act"})
