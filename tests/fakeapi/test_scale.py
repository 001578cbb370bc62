"""The scale subresource of Deployments, ReplicaSets and custom resources, as HPA, KEDA and
``kubectl scale`` use it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakeapi import FakeCluster
from tests.fakeapi.conftest import Kubectl

pytestmark = pytest.mark.timeout(60)

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
RSS = "/apis/apps/v1/namespaces/default/replicasets"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
MERGE = {"Content-Type": "application/merge-patch+json"}


def deployment(replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
        },
    }


def widget_crd(scale: bool = True) -> dict[str, Any]:
    count = {"type": "integer"}
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"replicas": count}},
            "status": {
                "type": "object",
                "properties": {"replicas": count, "selector": {"type": "string"}},
            },
        },
    }
    subresources: dict[str, Any] = {"status": {}}
    if scale:
        subresources["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{**version, "subresources": subresources}],
        },
    }


def with_widget(http: httpx.Client, scale: bool = True) -> dict[str, Any]:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert http.post(crds, json=widget_crd(scale)).status_code == 201
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    created = http.post(WIDGETS, json={**body, "spec": {"replicas": 1}})
    assert created.status_code == 201, created.text
    status = {"status": {"replicas": 1, "selector": "app=w"}}
    http.patch(f"{WIDGETS}/w/status", json=status, headers=MERGE)
    return created.json()


def test_a_deployments_scale_reads_and_writes_its_replicas(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    created = http.post(DEPLOYS, json=deployment(replicas=2)).json()
    scale = http.get(f"{DEPLOYS}/web/scale").json()
    live = http.get(f"{DEPLOYS}/web").json()["metadata"]
    assert scale == {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": created["metadata"]["uid"],
            "resourceVersion": live["resourceVersion"],
            "creationTimestamp": created["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 2, "selector": "app=web"},
    }

    scale["spec"]["replicas"] = 3
    put = http.put(f"{DEPLOYS}/web/scale", json=scale)
    assert put.status_code == 200 and put.json()["spec"] == {"replicas": 3}
    assert http.get(f"{DEPLOYS}/web").json()["spec"]["replicas"] == 3
    assert len(cluster.select("v1/pods")) == 3
    stale = http.put(f"{DEPLOYS}/web/scale", json=scale)  # the resourceVersion read before
    assert stale.status_code == 409

    zero = http.patch(f"{DEPLOYS}/web/scale", json={"spec": {"replicas": 0}}, headers=MERGE)
    assert zero.json()["spec"] == {}  # omitempty
    assert cluster.select("v1/pods") == []


def test_a_negative_scale_is_refused_with_the_scale_kind(http: httpx.Client) -> None:
    http.post(DEPLOYS, json=deployment())
    answer = http.patch(f"{DEPLOYS}/web/scale", json={"spec": {"replicas": -1}}, headers=MERGE)
    assert answer.status_code == 422
    assert answer.json()["message"] == (
        'Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0"
    )


def test_a_replica_sets_scale_shows_its_own_selector(http: httpx.Client) -> None:
    http.post(DEPLOYS, json=deployment())
    (rs,) = http.get(RSS).json()["items"]
    name, pod_hash = rs["metadata"]["name"], rs["metadata"]["labels"]["pod-template-hash"]
    scale = http.get(f"{RSS}/{name}/scale").json()
    assert scale["status"] == {"replicas": 2, "selector": f"app=web,pod-template-hash={pod_hash}"}


def test_discovery_names_the_scale_kind(http: httpx.Client) -> None:
    resources = http.get("/apis/apps/v1").json()["resources"]
    entry = next(r for r in resources if r["name"] == "deployments/scale")
    assert (entry["group"], entry["version"], entry["kind"]) == ("autoscaling", "v1", "Scale")


def test_kubectl_scale_scales_a_deployment(cluster: FakeCluster, kubectl: Kubectl) -> None:
    cluster.create("apps/v1/deployments", deployment(replicas=1))
    done = kubectl("scale", "deployment/web", "--replicas=4")
    assert done.stdout.strip() == "deployment.apps/web scaled"
    assert len(cluster.select("v1/pods")) == 4


def test_a_custom_resources_scale_maps_the_paths_its_crd_declares(
    cluster: FakeCluster, http: httpx.Client, kubectl: Kubectl
) -> None:
    with_widget(http)
    scale = http.get(f"{WIDGETS}/w/scale").json()
    assert (scale["spec"], scale["status"]) == (
        {"replicas": 1},
        {"replicas": 1, "selector": "app=w"},
    )

    put = http.put(f"{WIDGETS}/w/scale", json={**scale, "spec": {"replicas": 5}})
    assert put.status_code == 200, put.text
    widget = http.get(f"{WIDGETS}/w").json()
    assert widget["spec"]["replicas"] == 5 and widget["metadata"]["generation"] == 2

    done = kubectl("scale", "widgets/w", "--replicas=2")
    assert done.stdout.strip() == "widget.example.com/w scaled"
    widget = http.get(f"{WIDGETS}/w").json()
    assert widget["spec"]["replicas"] == 2 and widget["metadata"]["generation"] == 3


def test_a_custom_resource_without_scale_has_no_scale(http: httpx.Client) -> None:
    with_widget(http, scale=False)
    assert http.get(f"{WIDGETS}/w/scale").status_code == 404
