"""The fake's Gateway controller writes HTTPRoute conditions as a real one would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakeapi import FakeCluster, gateways

ROUTES = "gateway.networking.k8s.io/v1/httproutes"
GATEWAYS = "gateway.networking.k8s.io/v1/gateways"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"


def route() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}],
        },
    }


def conditions(cluster: FakeCluster) -> dict[str, tuple[str, str]]:
    [parent] = cluster.get(ROUTES, "r")["status"]["parents"]
    return {c["type"]: (c["status"], c["reason"]) for c in parent["conditions"]}


def test_route_conditions_follow_the_gateway_and_the_backend(tmp_path: Path) -> None:
    with FakeCluster(tmp_path) as cluster:
        for crd in gateways.crds():
            cluster.create(CRDS, crd)
        cluster.create(ROUTES, route())

        assert conditions(cluster) == {
            "Accepted": ("False", "NoMatchingParent"),
            "ResolvedRefs": ("False", "BackendNotFound"),
        }
        listener = {"name": "http", "port": 80, "protocol": "HTTP"}
        gateway = {"metadata": {"name": "gw"}, "spec": {"gatewayClassName": "x"}}
        cluster.create(GATEWAYS, {**gateway, "spec": {**gateway["spec"], "listeners": [listener]}})
        service = {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}
        cluster.create("v1/services", service)

        assert conditions(cluster) == {
            "Accepted": ("True", "Accepted"),
            "ResolvedRefs": ("True", "ResolvedRefs"),
        }
        [parent] = cluster.get(ROUTES, "r")["status"]["parents"]
        assert parent["parentRef"] == {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "gw",
        }
        assert parent["controllerName"] == gateways.CONTROLLER
