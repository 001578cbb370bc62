"""The route of an API: an HTTPRoute (routing ``gateway``), an Ingress (``ingress``) or none."""

from __future__ import annotations

import jsonschema
import pytest

from cortex.k8s import OperatorSettings, render_route, rendered_kinds
from cortex.k8s.route import claim, timeout_text
from tests.k8s.conftest import (
    GATEWAY,
    INGRESS,
    KUBERNETES_VERSIONS,
    ROUTINGS,
    by_kind,
    make_api,
    owner_of,
    render_api,
    validate_manifest,
)


def test_gateway_routing_renders_an_httproute_on_the_gateway_of_the_settings() -> None:
    api = make_api("iris", networking={"endpoint": "/models/iris"})

    route = by_kind(render_api(api, GATEWAY))["HTTPRoute"]

    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["name"] == "api-iris"
    assert route["spec"] == {
        "parentRefs": [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "namespace": "gateway-system",
                "name": "cortex",
            }
        ],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/models/iris"}}],
                "backendRefs": [{"name": "api-iris", "port": 8888}],
                "timeouts": {"request": "300s"},  # networking.timeout's default
            }
        ],
    }


def test_the_route_takes_hostname_and_timeout_from_the_spec() -> None:
    api = make_api("iris", networking={"hostname": "ml.example.com", "timeout": "1m30s"})

    spec = render_route(api, owner_of(api), GATEWAY)["spec"]

    assert spec["hostnames"] == ["ml.example.com"]
    assert spec["rules"][0]["timeouts"] == {"request": "90s"}


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30s"), (0.25, "250ms"), (1.5, "1500ms"), (3600, "3600s")]
)
def test_timeouts_are_gateway_api_durations(seconds: float, text: str) -> None:
    assert timeout_text(seconds) == text


@pytest.mark.parametrize(
    ("routing", "kinds"),
    [
        ("gateway", ["Deployment", "Service", "HTTPRoute", "HorizontalPodAutoscaler"]),
        ("ingress", ["Deployment", "Service", "Ingress", "HorizontalPodAutoscaler"]),
        ("none", ["Deployment", "Service", "HorizontalPodAutoscaler"]),
    ],
)
def test_each_routing_mode_renders_its_route_kind_only(routing: str, kinds: list[str]) -> None:
    objects = render_api(make_api(), ROUTINGS[routing])  # min_replicas 1: no budget

    assert [obj["kind"] for obj in objects] == kinds
    assert [kind.kind for kind in rendered_kinds(ROUTINGS[routing])] == [
        *kinds,
        "PodDisruptionBudget",
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("routing", sorted(ROUTINGS))
def test_every_routing_mode_renders_valid_objects(routing: str, version: str) -> None:
    api = make_api(
        "iris",
        networking={"endpoint": "/v1/iris", "hostname": "*.example.com", "timeout": "2s"},
    )

    for obj in render_api(api, ROUTINGS[routing]):
        validate_manifest(obj, version)


def test_the_httproute_schema_catches_what_a_gateway_would_refuse() -> None:
    api = make_api("iris", networking={"timeout": "2s"})
    route = render_route(api, owner_of(api), GATEWAY)
    route["spec"]["rules"][0]["timeouts"]["request"] = "2 seconds"

    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        validate_manifest(route, KUBERNETES_VERSIONS[0])


def test_the_claim_is_host_and_path_without_trailing_slash() -> None:
    assert claim(make_api("iris")) == ("", "/iris")
    assert claim(make_api("a", networking={"endpoint": "/v1/", "hostname": "x.io"})) == (
        "x.io",
        "/v1",
    )


def test_rendering_a_route_without_its_setting_is_refused() -> None:
    api = make_api()

    with pytest.raises(ValueError, match=r"settings\.gateway"):
        render_route(api, owner_of(api), OperatorSettings())
    assert by_kind(render_api(api, INGRESS))["Ingress"]["spec"]["ingressClassName"] == "traefik"
