"""EndpointSlices list the pods a Service selects, with their IPs and readiness, as the real
controller writes them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakeapi import FakeCluster
from tests.fakeapi.test_workloads import DEPLOYMENTS, deployment

pytestmark = pytest.mark.timeout(60)

SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


def service(target_port: int | str = 8080) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": {"team": "ml"}},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": target_port}],
        },
    }


def slices(http: httpx.Client) -> list[dict[str, Any]]:
    found = http.get(SLICES, params={"labelSelector": "kubernetes.io/service-name=web"})
    found.raise_for_status()
    items: list[dict[str, Any]] = found.json()["items"]
    return items


def test_a_service_lists_its_pods_ready_once_their_ready_condition_holds(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    cluster.create("v1/services", service())
    cluster.create(DEPLOYMENTS, deployment(replicas=2))

    pending = slices(http)
    cluster.set_pods("web", "pending")
    assert slices(http) == pending == []  # no pod IP yet: nothing to list
    cluster.set_pods("web", "ready", ips=["127.0.0.2", "127.0.0.3"])

    [ready] = slices(http)
    assert ready["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [e["addresses"] for e in ready["endpoints"]] == [["127.0.0.2"], ["127.0.0.3"]]
    assert all(e["conditions"]["ready"] for e in ready["endpoints"])
    assert ready["metadata"]["labels"]["team"] == "ml"  # the Service's labels are copied
    assert ready["metadata"]["ownerReferences"][0]["kind"] == "Service"


def test_a_pod_that_stops_being_ready_stays_listed_not_ready(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    cluster.create("v1/services", service())
    cluster.create(DEPLOYMENTS, deployment(replicas=1))
    cluster.set_pods("web", "ready")

    cluster.set_pods("web", "crash")

    [crashed] = slices(http)
    [endpoint] = crashed["endpoints"]
    assert endpoint["addresses"][0].startswith("10.244.")  # the IP it got when it started
    assert endpoint["conditions"] == {"ready": False, "serving": False, "terminating": False}


def test_scaling_to_zero_empties_the_slice(cluster: FakeCluster, http: httpx.Client) -> None:
    cluster.create("v1/services", service())
    cluster.create(DEPLOYMENTS, deployment(replicas=1))
    cluster.set_pods("web", "ready")

    cluster.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 0}})

    assert slices(http) == []


def test_a_named_target_port_is_the_containers_port_of_that_name(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    body = deployment(replicas=1)
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "http", "containerPort": 9000}
    ]
    cluster.create("v1/services", service(target_port="http"))
    cluster.create(DEPLOYMENTS, body)
    cluster.set_pods("web", "ready")

    [ready] = slices(http)

    assert ready["ports"][0]["port"] == 9000


def test_deleting_the_service_deletes_its_slices(cluster: FakeCluster, http: httpx.Client) -> None:
    cluster.create("v1/services", service())
    cluster.create(DEPLOYMENTS, deployment(replicas=1))
    cluster.set_pods("web", "ready")

    cluster.delete("v1/services", "web")

    assert slices(http) == []
