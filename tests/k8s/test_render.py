"""render(): the children of one RealtimeAPI, their names, labels, owner, Service and Ingress."""
# The HTTPRoute and the routing modes: test_route.py.

from __future__ import annotations

import pytest

from cortex.k8s import (
    ANNOTATION_SPEC_HASH,
    CHILD_KINDS,
    LABEL_API_KIND,
    LABEL_API_NAME,
    OperatorSettings,
    Owner,
    child_name,
    render,
    rendered_kinds,
)
from cortex.spec import spec_hash
from tests.k8s.conftest import (
    INGRESS,
    OWNER_UID,
    ROUTINGS,
    by_kind,
    make_api,
    owner_of,
    render_api,
    validate_k8s,
)


def test_render_returns_deployment_service_ingress_hpa_in_order() -> None:
    objects = render_api(make_api(), INGRESS)

    assert [(obj["apiVersion"], obj["kind"]) for obj in objects] == [
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("networking.k8s.io/v1", "Ingress"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ]


def test_children_are_named_after_the_api_in_the_owner_namespace() -> None:
    api = make_api("iris")

    objects = render(api, Owner("iris", "team-a", OWNER_UID), OperatorSettings())

    assert {(obj["metadata"]["name"], obj["metadata"]["namespace"]) for obj in objects} == {
        ("api-iris", "team-a")
    }
    assert child_name("iris") == "api-iris"


@pytest.mark.parametrize("routing", sorted(ROUTINGS))
def test_owner_references_point_at_the_cr(routing: str) -> None:
    api = make_api("iris")
    owner = Owner("iris", "ml", OWNER_UID)

    for obj in render(api, owner, ROUTINGS[routing]):
        assert obj["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "cortex.dev/v1alpha1",
                "kind": "RealtimeAPI",
                "name": "iris",
                "uid": OWNER_UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


@pytest.mark.parametrize("routing", sorted(ROUTINGS))
def test_every_child_carries_the_cortex_labels_and_the_spec_hash(routing: str) -> None:
    api = make_api("iris")

    for obj in render_api(api, ROUTINGS[routing]):
        assert obj["metadata"]["labels"] == {
            LABEL_API_NAME: "iris",
            LABEL_API_KIND: "RealtimeAPI",
            "app.kubernetes.io/managed-by": "cortex",
        }
        assert obj["metadata"]["annotations"] == {ANNOTATION_SPEC_HASH: spec_hash(api)}


def test_owner_of_another_api_is_refused() -> None:
    with pytest.raises(ValueError, match="'other' is not the resource of api 'iris'"):
        render(make_api("iris"), Owner("other", "ml", OWNER_UID), OperatorSettings())


def test_service_sends_port_8888_to_the_pods_http_port() -> None:
    service = by_kind(render_api(make_api("iris")))["Service"]

    assert service["spec"] == {
        "type": "ClusterIP",
        "selector": {LABEL_API_NAME: "iris"},
        "ports": [{"name": "http", "port": 8888, "targetPort": "http", "protocol": "TCP"}],
    }


def test_ingress_routes_the_endpoint_prefix_to_the_service() -> None:
    api = make_api("iris", networking={"endpoint": "/models/iris"})

    ingress = by_kind(render_api(api, INGRESS))["Ingress"]

    assert ingress["spec"] == {
        "ingressClassName": "traefik",
        "rules": [
            {
                "http": {
                    "paths": [
                        {
                            "path": "/models/iris",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "api-iris", "port": {"number": 8888}}},
                        }
                    ]
                }
            }
        ],
    }


def test_ingress_path_defaults_to_the_api_name() -> None:
    ingress = by_kind(render_api(make_api("iris"), INGRESS))["Ingress"]

    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/iris"


def test_ingress_rule_takes_the_hostname_of_the_spec() -> None:
    api = make_api("iris", networking={"hostname": "iris.example.com"})

    [rule] = by_kind(render_api(api, INGRESS))["Ingress"]["spec"]["rules"]

    assert rule["host"] == "iris.example.com"
    assert rule["http"]["paths"][0]["path"] == "/iris"


def test_rendered_objects_are_fresh_each_time() -> None:
    api = make_api(project={"configMap": "p"}, compute={"gpu": 1})
    settings = OperatorSettings(gpu_node_selector={"a": "b"}, gpu_tolerations=({"key": "k"},))
    first = render_api(api, settings)

    first[0]["spec"]["template"]["spec"]["nodeSelector"]["a"] = "changed"
    first[0]["spec"]["template"]["spec"]["tolerations"][1]["key"] = "changed"
    first[0]["spec"]["template"]["spec"]["initContainers"][0]["resources"]["limits"].clear()

    assert render_api(api, settings)[0] != first[0]
    assert settings.gpu_node_selector == {"a": "b"}
    assert settings.gpu_tolerations == ({"key": "k"},)


def test_the_longest_api_name_gives_valid_child_names() -> None:
    api = make_api("a" * 42)

    for obj in render_api(api, INGRESS):
        assert len(obj["metadata"]["name"]) <= 63  # a DNS label: Service names
        validate_k8s(obj, "1.29.0")


def test_the_deployment_takes_the_replicas_the_scale_subresource_asks_for() -> None:
    api = make_api("iris", autoscaling={"min_replicas": 2, "max_replicas": 5})

    settings = OperatorSettings()
    unset = render(api, owner_of(api), settings)
    scaled = render(api, owner_of(api), settings, replicas=4)

    assert unset[0]["spec"]["replicas"] == 2  # init_replicas
    assert scaled[0]["spec"]["replicas"] == 4


@pytest.mark.parametrize("routing", sorted(ROUTINGS))
def test_render_gives_one_object_of_each_rendered_kind_in_order(routing: str) -> None:
    api = make_api("iris", autoscaling={"min_replicas": 2})
    settings = ROUTINGS[routing]

    kinds = [child["kind"] for child in render(api, owner_of(api), settings)]

    assert kinds == [kind.kind for kind in rendered_kinds(settings)]
    assert set(kinds) <= {kind.kind for kind in CHILD_KINDS}
