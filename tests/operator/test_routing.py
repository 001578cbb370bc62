"""Routing over HTTP: HTTPRoutes on a Gateway and their status in the API's, the setting
switched between restarts, and two APIs claiming one host and path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakeapi import FakeCluster, wait_for
from tests.operator.conftest import (
    GATEWAY_ROUTING,
    GATEWAYS,
    HTTPROUTES,
    INGRESSES,
    RAPI,
    gateway_object,
    resource,
    running,
    serve_gateway_api,
    status_of,
    wait_status,
)

pytestmark = pytest.mark.timeout(90)


def routed(cluster: FakeCluster, name: str) -> dict[str, Any]:
    conditions = status_of(cluster, name).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Routed"), {})


def wait_routed(cluster: FakeCluster, name: str, status: str, reason: str) -> dict[str, Any]:
    return wait_for(
        lambda: (
            (c := routed(cluster, name)).get("status") == status and c.get("reason") == reason and c
        ),
        what=f"Routed {status} {reason} on {name} (last: {routed(cluster, name)})",
    )


def test_gateway_routing_creates_and_updates_an_httproute_whose_status_shows_in_the_api(
    cluster: FakeCluster,
) -> None:
    serve_gateway_api(cluster, gateway=False)
    with running(routing=GATEWAY_ROUTING, retry_delay=0.2, slow_retry=0.5):
        cluster.create(RAPI, resource("iris", networking={"timeout": "20s"}))
        route = wait_for(lambda: cluster.get(HTTPROUTES, "api-iris"), what="the HTTPRoute")
        assert route["spec"]["parentRefs"][0] | {"namespace": "gateway-system"} == {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "namespace": "gateway-system",
            "name": "cortex",
        }
        assert route["spec"]["rules"][0]["timeouts"] == {"request": "20s"}
        cluster.set_pods("api-iris", "ready")

        # No such Gateway: the pods serve (live), the route problem is said.
        condition = wait_routed(cluster, "iris", "False", "NoMatchingParent")
        current = wait_status(cluster, "iris", "live")
        assert "Gateway gateway-system/cortex not found" in condition["message"]
        assert current["message"] == condition["message"]
        assert cluster.get(INGRESSES, "api-iris") is None

        cluster.create("v1/namespaces", {"metadata": {"name": "gateway-system"}})
        cluster.create(GATEWAYS, gateway_object(), namespace="gateway-system")
        wait_routed(cluster, "iris", "True", "Accepted")
        assert status_of(cluster, "iris")["message"] == ""

        patch = {"spec": {"networking": {"endpoint": "/v2/iris", "hostname": "ml.example.com"}}}
        cluster.patch(RAPI, "iris", patch)
        updated = wait_for(
            lambda: (r := cluster.get(HTTPROUTES, "api-iris"))["spec"].get("hostnames") and r,
            what="the HTTPRoute updated",
        )
        assert updated["spec"]["rules"][0]["matches"] == [
            {"path": {"type": "PathPrefix", "value": "/v2/iris"}}
        ]
        assert updated["spec"]["hostnames"] == ["ml.example.com"]
        wait_routed(cluster, "iris", "True", "Accepted")


def test_a_gateway_that_takes_no_routes_from_the_namespace_is_said_in_the_status(
    cluster: FakeCluster,
) -> None:
    serve_gateway_api(cluster, gateway=False)
    cluster.create("v1/namespaces", {"metadata": {"name": "gateway-system"}})
    gateway = gateway_object()
    gateway["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": {"from": "Same"}}
    cluster.create(GATEWAYS, gateway, namespace="gateway-system")
    with running(routing=GATEWAY_ROUTING, retry_delay=0.2):
        cluster.create(RAPI, resource("iris"))
        condition = wait_routed(cluster, "iris", "False", "NotAllowedByListeners")

    assert "allows routes from namespace default" in condition["message"]


def test_switching_the_routing_setting_removes_the_old_route(cluster: FakeCluster) -> None:
    serve_gateway_api(cluster)
    cluster.create(RAPI, resource("iris"))
    with running(routing=GATEWAY_ROUTING, retry_delay=0.2):
        wait_for(lambda: cluster.get(HTTPROUTES, "api-iris"), what="the HTTPRoute")

    with running(retry_delay=0.2):  # ingress
        wait_for(lambda: cluster.get(INGRESSES, "api-iris"), what="the Ingress")
        wait_for(lambda: cluster.get(HTTPROUTES, "api-iris") is None, what="no HTTPRoute")

    with running(routing={"routing": "none"}, retry_delay=0.2):
        wait_for(lambda: cluster.get(INGRESSES, "api-iris") is None, what="no Ingress")
        wait_for(
            lambda: "Routed" not in {c["type"] for c in status_of(cluster, "iris")["conditions"]},
            what="no Routed condition",
        )
    assert cluster.get("v1/services", "api-iris") is not None


def test_the_younger_of_two_apis_claiming_one_path_is_an_error_naming_the_older(
    cluster: FakeCluster,
) -> None:
    shared = {"networking": {"endpoint": "/predict/"}}
    with running(retry_delay=0.2, slow_retry=0.5):
        cluster.create(RAPI, resource("first", **shared))
        wait_for(lambda: cluster.get(INGRESSES, "api-first"), what="the first Ingress")
        cluster.advance(5)  # a later creationTimestamp
        cluster.create(RAPI, resource("second", networking={"endpoint": "/predict"}))

        current = wait_status(cluster, "second", "error")
        assert current["message"] == (
            "networking.endpoint /predict (any host) is already routed to the older API "
            "default/first; change networking.endpoint or networking.hostname of one of them"
        )
        assert routed(cluster, "second")["reason"] == "RouteConflict"
        assert cluster.get(INGRESSES, "api-second") is None
        assert routed(cluster, "first")["status"] == "True"

        cluster.delete(RAPI, "first")
        wait_for(lambda: cluster.get(INGRESSES, "api-second"), what="the second's Ingress")
        wait_routed(cluster, "second", "True", "IngressCreated")


def test_one_path_on_two_hosts_is_no_conflict(cluster: FakeCluster) -> None:
    with running(retry_delay=0.2):
        for name in ("red", "blue"):
            spec = {"networking": {"endpoint": "/predict", "hostname": f"{name}.example.com"}}
            cluster.create(RAPI, resource(name, **spec))
        for name in ("red", "blue"):
            wait_routed(cluster, name, "True", "IngressCreated")
