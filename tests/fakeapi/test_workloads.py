"""Deployments own ReplicaSets, which own pods, and roll out as the real controllers do."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx
import pytest

from tests.fakeapi import FakeCluster, wait_for
from tests.fakeapi.conftest import Kubectl

pytestmark = pytest.mark.timeout(60)

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
RSS = "/apis/apps/v1/namespaces/default/replicasets"
PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "apps/v1/deployments"
REPLICASETS = "apps/v1/replicasets"
REVISION = "deployment.kubernetes.io/revision"


def deployment(
    replicas: int = 2, image: str = "app:1", strategy: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template,
            **spec,
        },
    }
    if strategy is not None:
        body["spec"]["strategy"] = strategy
    return body


def rolling(surge: int | str, unavailable: int | str) -> dict[str, Any]:
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }


def new_image(cluster: FakeCluster, image: str) -> None:
    containers = [{"name": "app", "image": image}]
    cluster.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": containers}}}})


def sizes(cluster: FakeCluster) -> dict[str, tuple[int, str]]:
    """Each ReplicaSet's spec.replicas and the image of its template."""
    return {
        rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["spec"]["replicas"]
        for rs in cluster.select(REPLICASETS)
    }


def condition(cluster: FakeCluster, type_: str) -> dict[str, Any]:
    status = cluster.get(DEPLOYMENTS, "web")["status"]
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_a_deployment_owns_a_replica_set_per_template_which_owns_the_pods(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    created = http.post(DEPLOYS, json=deployment(replicas=2))
    assert created.status_code == 201, created.text
    uid = created.json()["metadata"]["uid"]

    (rs,) = http.get(RSS, params={"labelSelector": "app=web"}).json()["items"]
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == pod_hash
    (owner,) = rs["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Deployment", uid, True)
    annotations = rs["metadata"]["annotations"]
    assert annotations[REVISION] == "1"
    # 2 desired, at most 2 + 25% rounded up while rolling out
    assert annotations["deployment.kubernetes.io/desired-replicas"] == "2"
    assert annotations["deployment.kubernetes.io/max-replicas"] == "3"
    pods = http.get(PODS, params={"labelSelector": f"pod-template-hash={pod_hash}"}).json()["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"web-{pod_hash}-")
        (ref,) = pod["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["controller"]) == (
            "ReplicaSet",
            rs["metadata"]["name"],
            True,
        )
        assert pod["status"]["phase"] == "Pending"
    assert http.get(f"{DEPLOYS}/web").json()["metadata"]["annotations"][REVISION] == "1"


def test_status_counts_and_conditions_follow_the_pods(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=2))
    status = cluster.get(DEPLOYMENTS, "web")["status"]
    assert status["observedGeneration"] == 1
    assert (status["replicas"], status["updatedReplicas"], status["unavailableReplicas"]) == (
        2,
        2,
        2,
    )
    assert "readyReplicas" not in status and "availableReplicas" not in status  # omitempty
    available = condition(cluster, "Available")
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert available["message"] == "Deployment does not have minimum availability."
    progressing = condition(cluster, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "ReplicaSetUpdated")

    cluster.set_pods("web", "ready", count=1)
    status = cluster.get(DEPLOYMENTS, "web")["status"]
    assert (
        status["readyReplicas"],
        status["availableReplicas"],
        status["unavailableReplicas"],
    ) == (1, 1, 1)
    # 2 - 25% of 2 rounded down (0): both must be available
    assert condition(cluster, "Available")["status"] == "False"

    cluster.set_pods("web", "ready")
    status = cluster.get(DEPLOYMENTS, "web")["status"]
    assert "unavailableReplicas" not in status
    available = condition(cluster, "Available")
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")
    progressing = condition(cluster, "Progressing")
    assert progressing["reason"] == "NewReplicaSetAvailable"
    (rs,) = cluster.select(REPLICASETS)
    assert (
        progressing["message"]
        == f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'
    )
    assert progressing["lastUpdateTime"] and progressing["lastTransitionTime"]


def test_a_rollout_stays_within_max_surge_and_max_unavailable_as_pods_get_ready(
    cluster: FakeCluster,
) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=4, strategy=rolling(1, 1)))
    cluster.set_pods("web", "ready")
    new_image(cluster, "app:2")
    seen = []
    for _ in range(10):
        pods = [p for p in cluster.select("v1/pods", labels="app=web")]
        ready = [p for p in pods if p["status"]["phase"] == "Running"]
        seen.append(sizes(cluster))
        assert len(pods) <= 4 + 1 and len(ready) >= 4 - 1
        if sizes(cluster) == {"app:1": 0, "app:2": 4} and len(ready) == 4:
            break
        cluster.set_pods("web", "ready")
    else:
        raise AssertionError(f"the rollout did not finish: {seen}")
    # one surge pod and one unavailable: old 4 -> 3, new 0 -> 2, then step by step
    assert seen[0] == {"app:1": 3, "app:2": 2}
    assert condition(cluster, "Progressing")["reason"] == "NewReplicaSetAvailable"
    revisions = {
        r["spec"]["template"]["spec"]["containers"][0]["image"]: r["metadata"]["annotations"][
            REVISION
        ]
        for r in cluster.select(REPLICASETS)
    }
    assert revisions == {"app:1": "1", "app:2": "2"}
    assert cluster.get(DEPLOYMENTS, "web")["metadata"]["annotations"][REVISION] == "2"


def test_percentages_round_surge_up_and_unavailability_down(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=10))  # 25%: surge 3 (2.5 up), unavailable 2
    cluster.set_pods("web", "ready")

    new_image(cluster, "app:2")

    assert sizes(cluster) == {"app:1": 8, "app:2": 5}
    assert len(cluster.select("v1/pods", labels="app=web")) == 13


def test_scaling_mid_rollout_shares_the_new_replicas_in_proportion(cluster: FakeCluster) -> None:
    # the example of the Kubernetes documentation ("Proportional scaling")
    cluster.create(DEPLOYMENTS, deployment(replicas=10, strategy=rolling(3, 2)))
    cluster.set_pods("web", "ready")
    new_image(cluster, "app:2")  # its pods never get ready
    assert sizes(cluster) == {"app:1": 8, "app:2": 5}

    cluster.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 15}})

    assert sizes(cluster) == {"app:1": 11, "app:2": 7}


def test_recreate_removes_the_old_pods_before_making_new_ones(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=2, strategy={"type": "Recreate"}))
    cluster.set_pods("web", "ready")

    new_image(cluster, "app:2")

    assert sizes(cluster) == {"app:1": 0, "app:2": 2}
    images = {p["spec"]["containers"][0]["image"] for p in cluster.select("v1/pods")}
    assert images == {"app:2"}


def test_zero_replicas_means_no_pods(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=0))
    assert cluster.select("v1/pods") == []
    (rs,) = cluster.select(REPLICASETS)
    assert rs["spec"]["replicas"] == 0 and rs["status"]["replicas"] == 0
    assert condition(cluster, "Available")["status"] == "True"  # 0 of 0 is enough

    cluster.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 3}})
    assert len(cluster.select("v1/pods")) == 3
    cluster.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 0}})
    assert cluster.select("v1/pods") == []
    assert "replicas" not in cluster.get(DEPLOYMENTS, "web")["status"]


def test_revision_history_limit_keeps_that_many_old_replica_sets_at_zero(
    cluster: FakeCluster,
) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=1, revisionHistoryLimit=1))
    for image in ("app:2", "app:3", "app:4"):
        cluster.set_pods("web", "ready")
        new_image(cluster, image)
        cluster.set_pods("web", "ready")
    assert sizes(cluster) == {"app:3": 0, "app:4": 1}
    assert [p["spec"]["containers"][0]["image"] for p in cluster.select("v1/pods")] == ["app:4"]


def test_min_ready_seconds_delays_availability_by_the_clock(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=1, minReadySeconds=30))
    cluster.set_pods("web", "ready")
    status = cluster.get(DEPLOYMENTS, "web")["status"]
    assert status["readyReplicas"] == 1 and "availableReplicas" not in status

    cluster.advance(31)

    assert cluster.get(DEPLOYMENTS, "web")["status"]["availableReplicas"] == 1


def test_no_progress_for_the_deadline_is_progress_deadline_exceeded(cluster: FakeCluster) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=1))  # progressDeadlineSeconds: 600
    cluster.advance(599)
    assert condition(cluster, "Progressing")["status"] == "True"

    cluster.advance(2)

    stuck = condition(cluster, "Progressing")
    (rs,) = cluster.select(REPLICASETS)
    assert (stuck["status"], stuck["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert stuck["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'
    cluster.set_pods("web", "ready")
    assert condition(cluster, "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_kubectl_rollout_status_follows_a_rollout_to_its_end(
    cluster: FakeCluster, kubectl: Kubectl
) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=3))
    cluster.set_pods("web", "ready")
    new_image(cluster, "app:2")
    watcher = kubectl.start("rollout", "status", "deployment/web", "--timeout=50s")

    def finished() -> bool:
        cluster.set_pods("web", "ready")
        return watcher.poll() is not None

    wait_for(finished, timeout=50, interval=0.3, what="kubectl rollout status to end")
    out, err = watcher.communicate()
    assert watcher.returncode == 0, err
    assert 'deployment "web" successfully rolled out' in out
    assert 'Waiting for deployment "web" rollout to finish' in out


def test_kubectl_rollout_status_fails_once_the_deadline_passes(
    cluster: FakeCluster, kubectl: Kubectl
) -> None:
    cluster.create(DEPLOYMENTS, deployment(replicas=1, progressDeadlineSeconds=60))
    watcher = kubectl.start("rollout", "status", "deployment/web", "--timeout=50s")
    # before or after kubectl's first look: it lists, then watches from what it listed
    cluster.advance(61)

    try:
        _, err = watcher.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        watcher.kill()
        raise
    assert watcher.returncode == 1
    assert 'deployment "web" exceeded its progress deadline' in err
