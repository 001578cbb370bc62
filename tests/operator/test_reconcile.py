"""Drift repair, restart-free updates and zero-write restarts: the operator against the fake."""

from __future__ import annotations

from typing import Any

import pytest

from cortex.k8s import OperatorSettings
from cortex.operator.state import State
from tests.fakeapi import FakeCluster, wait_for
from tests.operator.conftest import (
    CHILDREN,
    DEPLOYMENTS,
    HPAS,
    INGRESS_ROUTING,
    INGRESSES,
    RAPI,
    SERVICES,
    Operator,
    events_of,
    kubectl,
    resource,
    running,
    status_of,
    wait_children,
    wait_status,
)

pytestmark = pytest.mark.timeout(120)
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def image_of(cluster: FakeCluster, name: str) -> str:
    deployment = cluster.get(DEPLOYMENTS, f"api-{name}") or {}
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    return str((containers or [{}])[0].get("image", ""))


def template_of(cluster: FakeCluster, name: str) -> dict[str, Any]:
    return (cluster.get(DEPLOYMENTS, f"api-{name}") or {})["spec"]["template"]


def pods_of(cluster: FakeCluster, name: str) -> set[str]:
    pods = cluster.select("v1/pods", labels=f"cortex.dev/api-name={name}")
    return {p["metadata"]["name"] for p in pods}


def test_a_hand_edited_image_is_put_back(cluster: FakeCluster, operator: Operator) -> None:
    cluster.create(RAPI, resource("edited"))
    wait_children(cluster, "edited")
    image = image_of(cluster, "edited")

    kubectl(cluster, "set", "image", "deployment/api-edited", "api=someone/else:1")

    wait_for(lambda: image_of(cluster, "edited") == image, timeout=10, what="the image put back")
    wait_for(
        lambda: "DriftRepaired" in {e["reason"] for e in events_of(cluster, "edited")},
        what="a DriftRepaired event",
    )


@pytest.mark.parametrize("child", [DEPLOYMENTS, SERVICES, INGRESSES, HPAS])
def test_a_deleted_child_comes_back(cluster: FakeCluster, operator: Operator, child: str) -> None:
    cluster.create(RAPI, resource("gone"))
    before = wait_children(cluster, "gone")[child]

    cluster.delete(child, "api-gone")

    def back() -> bool:
        again = cluster.get(child, "api-gone")
        return again is not None and again["metadata"]["uid"] != before["metadata"]["uid"]

    wait_for(back, timeout=10, what=f"{child} re-created")


@pytest.mark.parametrize(
    "change",
    [
        {"autoscaling": {"max_replicas": 7, "min_replicas": 2}},
        {"networking": {"endpoint": "/v2/elsewhere"}},
        {"update_strategy": {"max_surge": 2}},
    ],
)
def test_scaling_networking_and_rollout_changes_replace_no_pod(
    cluster: FakeCluster, operator: Operator, change: dict[str, Any]
) -> None:
    cluster.create(RAPI, resource("steady"))
    wait_children(cluster, "steady")
    wait_for(lambda: pods_of(cluster, "steady"), what="the first pod")
    template, pods = template_of(cluster, "steady"), pods_of(cluster, "steady")

    cluster.patch(RAPI, "steady", {"spec": change})

    wait_for(lambda: status_of(cluster, "steady").get("observedGeneration") == 2, what="gen 2")
    assert template_of(cluster, "steady") == template
    assert pods <= pods_of(cluster, "steady")  # more pods may come, none was replaced
    if "networking" in change:
        ingress = cluster.get(INGRESSES, "api-steady")
        assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/v2/elsewhere"
    if "autoscaling" in change:
        assert cluster.get(HPAS, "api-steady")["spec"]["maxReplicas"] == 7


@pytest.mark.parametrize(
    "change",
    [
        {"predictor": {"type": "python", "path": "predictor.py", "config": {"threshold": 0.9}}},
        {"project": {"configMap": "steady-project-2", "sha256": "ab" * 32}},
    ],
)
def test_config_or_code_changes_roll_the_pods(
    cluster: FakeCluster, operator: Operator, change: dict[str, Any]
) -> None:
    cluster.create(RAPI, resource("rolled"))
    wait_children(cluster, "rolled")
    old = wait_for(lambda: pods_of(cluster, "rolled"), what="the first pod")

    cluster.patch(RAPI, "rolled", {"spec": change})

    wait_for(lambda: pods_of(cluster, "rolled") - old, what="a pod of the new template")


def test_a_300_kib_predictor_config_deploys(cluster: FakeCluster, operator: Operator) -> None:
    config = {"vocabulary": [f"w{i:06d}" for i in range(300 * 1024 // 10)]}
    cluster.create(RAPI, resource("big-config", predictor={"config": config}))

    wait_children(cluster, "big-config")
    wait_status(cluster, "big-config", "updating")
    cluster.set_pods("api-big-config", "ready")  # the kernel would not exec one 300 KiB variable
    wait_status(cluster, "big-config", "live")
    for res in CHILDREN:
        annotations = cluster.get(res, "api-big-config")["metadata"].get("annotations", {})
        assert sum(len(k) + len(v) for k, v in annotations.items()) < 4096


def test_a_restarted_operator_writes_nothing(cluster: FakeCluster) -> None:
    names = [f"api{i}" for i in range(5)]
    with running(retry_delay=0.2, slow_retry=0.5):
        for name in names:
            cluster.create(RAPI, resource(name))
        for name in names:
            wait_children(cluster, name)
        cluster.set_pods("api-api0", "ready")
        for name in names:
            wait_status(cluster, name, "live" if name == "api0" else "updating")
    before = len(cluster.served())
    state = State(OperatorSettings(namespace="default", **INGRESS_ROUTING))

    with running(state=state):
        wait_for(lambda: len(state.seen) == len(names), what="every API checked")
        served = cluster.served()[before:]

    writes = [(method, path) for method, path, _ in served if method in WRITES]
    assert writes == []
    for name in names:  # kopf keeps no progress or diff-base annotations on them either
        annotations = cluster.get(RAPI, name)["metadata"].get("annotations") or {}
        assert not [key for key in annotations if key.startswith("cortex.dev/")]


def test_deleting_an_api_frees_what_the_operator_kept(cluster: FakeCluster) -> None:
    state = State(OperatorSettings(namespace="default", **INGRESS_ROUTING), retry_delay=0.2)
    with running(state=state):
        for i in range(5):
            cluster.create(RAPI, resource(f"short{i}"))
        wait_for(lambda: len(state.seen) == 5, what="every API reconciled")
        for i in range(5):
            cluster.delete(RAPI, f"short{i}")

        wait_for(lambda: state.tracked() == 0, what="nothing kept for deleted APIs")
