"""Pods and autoscalers in the states tests put them in read as the kubelet and the HPA
controller write them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakeapi import FakeCluster

pytestmark = pytest.mark.timeout(60)

DEPLOYMENTS = "apps/v1/deployments"
HPAS = "autoscaling/v2/horizontalpodautoscalers"


def deployment(inits: bool = False, **container: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "api", "image": "api:1", **container}]}
    if inits:
        spec["initContainers"] = [{"name": "project", "image": "api:1"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec},
        },
    }


def conditions(pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in pod["status"]["conditions"]}


def test_a_crash_looping_init_container_keeps_the_pod_pending(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment(inits=True))
    (name,) = cluster.set_pods("web", "init-crash")
    pod = cluster.get("v1/pods", name)
    status = pod["status"]
    assert status["phase"] == "Pending"
    (init,) = status["initContainerStatuses"]
    waiting = init["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    uid = pod["metadata"]["uid"]
    assert waiting["message"] == (
        f"back-off 40s restarting failed container=project pod={name}_default({uid})"
    )
    assert init["lastState"]["terminated"]["exitCode"] == 1 and init["restartCount"] == 3
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert conditions(pod)["Initialized"] == ("False", "ContainersNotInitialized")
    initialized = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert initialized["message"] == "containers with incomplete status: [project]"


def test_init_crash_needs_an_init_container(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment())
    with pytest.raises(ValueError, match="no init container"):
        cluster.set_pods("web", "init-crash")


def test_a_missing_config_map_is_a_create_container_config_error(cluster: FakeCluster) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"configMapKeyRef": {"name": "api-config", "key": "t"}}}]
    cluster.create(DEPLOYMENTS, deployment(env=env))
    (name,) = cluster.set_pods("web", "config-error")
    status = cluster.get("v1/pods", name)["status"]
    assert status["phase"] == "Pending"
    waiting = status["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {
        "reason": "CreateContainerConfigError",
        "message": 'configmap "api-config" not found',
    }


def test_an_evicted_pod_stays_failed_and_is_replaced(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment(resources={"requests": {"memory": "512Mi"}}))
    cluster.set_pods("web", "ready")
    (evicted,) = cluster.set_pods("web", "evicted")

    status = cluster.get("v1/pods", evicted)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "Evicted")
    assert status["message"] == (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91844Ki. "
        "Container api was using 1532648Ki, request is 512Mi, has larger consumption of memory. "
    )
    pod = cluster.get("v1/pods", evicted)
    assert conditions(pod)["DisruptionTarget"] == ("True", "TerminationByKubelet")
    names = {p["metadata"]["name"] for p in cluster.select("v1/pods")}
    (replacement,) = names - {evicted}
    assert cluster.get("v1/pods", replacement)["status"]["phase"] == "Pending"
    status = cluster.get(DEPLOYMENTS, "web")["status"]
    assert status["replicas"] == 1 and "readyReplicas" not in status
    assert cluster.set_pods("web", "ready") == [replacement]  # the failed pod is not active


def test_a_ready_pod_keeps_its_transition_times_when_set_ready_again(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment())
    (name,) = cluster.set_pods("web", "ready")
    before = cluster.get("v1/pods", name)["status"]["conditions"]
    cluster.advance(60)
    cluster.set_pods("web", "ready")
    assert cluster.get("v1/pods", name)["status"]["conditions"] == before


def hpa(min_replicas: int = 1, max_replicas: int = 5) -> dict[str, Any]:
    metric = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "cortex_in_flight_requests_avg"},
            "target": {"type": "AverageValue", "averageValue": "4"},
        },
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [metric],
        },
    }


def test_an_hpa_that_reads_its_metric_says_so(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, {**deployment(), "spec": {**deployment()["spec"], "replicas": 2}})
    cluster.create(HPAS, hpa())
    status = cluster.set_hpa_status("web")["status"]
    assert (status["currentReplicas"], status["desiredReplicas"]) == (2, 2)
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("AbleToScale", "True", "ReadyForNewScale"),
        ("ScalingActive", "True", "ValidMetricFound"),
        ("ScalingLimited", "False", "DesiredWithinRange"),
    ]
    active = status["conditions"][1]["message"]
    assert active == (
        "the HPA was able to successfully calculate a replica count from pods metric "
        "cortex_in_flight_requests_avg"
    )
    (metric,) = status["currentMetrics"]
    assert metric["pods"]["current"] == {"averageValue": "0"}

    scaled = cluster.set_hpa_status("web", current=2, desired=5)["status"]
    able, _, limited = scaled["conditions"]
    assert (able["reason"], able["message"]) == (
        "SucceededRescale",
        "the HPA controller was able to update the target scale to 5",
    )
    assert (limited["status"], limited["reason"]) == ("True", "TooManyReplicas")


def test_an_hpa_that_cannot_read_its_metric_says_why(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment())
    cluster.create(HPAS, hpa())
    message = (
        "the HPA was unable to compute the replica count: unable to get metric "
        "cortex_in_flight_requests_avg: unable to fetch metrics from custom metrics API: "
        "the server could not find the metric cortex_in_flight_requests_avg for pods"
    )
    status = cluster.set_hpa_status("web", scaling_active=(False, "FailedGetPodsMetric", message))[
        "status"
    ]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("AbleToScale", "True", "SucceededGetScale"),
        ("ScalingActive", "False", "FailedGetPodsMetric"),
    ]
    assert status["conditions"][1]["message"] == message
    assert "currentMetrics" not in status
    with pytest.raises(LookupError):
        cluster.set_hpa_status("nope")
