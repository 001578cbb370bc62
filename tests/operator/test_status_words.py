"""Every status word and condition, each reached by its real cause in the fake cluster."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakeapi import FakeCluster, wait_for
from tests.operator.conftest import (
    DEPLOYMENTS,
    RAPI,
    Operator,
    kubectl,
    resource,
    status_of,
    wait_children,
    wait_status,
)

pytestmark = pytest.mark.timeout(120)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def test_kubectl_scale_scales_the_deployment_and_zero_is_scaled_to_zero(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.create(RAPI, resource("scaled"))
    wait_children(cluster, "scaled")

    kubectl(cluster, "scale", "rapi", "scaled", "--replicas", "3")
    wait_for(
        lambda: cluster.get(DEPLOYMENTS, "api-scaled")["spec"]["replicas"] == 3,
        what="the Deployment at 3 replicas",
    )
    cluster.set_pods("api-scaled", "ready")
    status = wait_status(cluster, "scaled", "live")
    assert (status["replicas"], status["selector"]) == (3, "cortex.dev/api-name=scaled")

    kubectl(cluster, "scale", "rapi", "scaled", "--replicas", "0")
    status = wait_status(cluster, "scaled", "scaled to zero")
    assert condition(status, "Ready")["status"] == "False"


def test_pods_refused_by_a_quota_are_rejected_until_the_quota_allows_them(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.reject("pods", kind="quota")
    cluster.create(RAPI, resource("quota"))

    status = wait_status(cluster, "quota", "error (rejected)")
    assert "exceeded quota" in status["message"]

    cluster.admit_all()
    wait_for(lambda: cluster.select("v1/pods", labels="cortex.dev/api-name=quota"), what="pods")
    cluster.set_pods("api-quota", "ready")
    wait_status(cluster, "quota", "live")


def test_a_webhook_refusing_the_deployment_is_rejected_and_retried(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.reject("deployments.apps", kind="webhook", message="GPUs need a team label")
    cluster.create(RAPI, resource("hooked", compute={"gpu": 1}))

    status = wait_status(cluster, "hooked", "error (rejected)")
    assert 'admission webhook "validate.policy.example.com" denied' in status["message"]
    assert "GPUs need a team label" in status["message"]
    assert condition(status, "Ready")["reason"] == "Forbidden"  # the API server's reason

    cluster.admit_all()  # the cluster is fixed: the operator's slow retry heals it
    wait_children(cluster, "hooked")
    wait_status(cluster, "hooked", "updating")


def test_rbac_refusing_a_child_is_rejected_with_the_servers_words(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.deny("patch", "services")
    cluster.create(RAPI, resource("denied"))

    status = wait_status(cluster, "denied", "error (rejected)")
    assert "cannot patch resource" in status["message"]
    assert condition(status, "Ready")["reason"] == "Forbidden"

    cluster.allow_all()
    wait_children(cluster, "denied")


def test_a_rollout_without_progress_past_its_deadline_is_stuck(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.create(RAPI, resource("stuck"))
    wait_children(cluster, "stuck")
    wait_status(cluster, "stuck", "updating")

    cluster.advance(601)  # progressDeadlineSeconds is 600

    status = wait_status(cluster, "stuck", "error (rollout stuck)")
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


@pytest.mark.parametrize(
    ("state", "word", "detail"),
    [("init-crash", "error (init)", "project"), ("config-error", "error (config)", "configmap")],
)
def test_init_and_configuration_failures_have_their_own_words(
    cluster: FakeCluster, operator: Operator, state: str, word: str, detail: str
) -> None:
    project = {"configMap": "broken-pod-project-abc", "sha256": "ab" * 32}  # an init container
    cluster.create(RAPI, resource("broken-pod", project=project))
    wait_children(cluster, "broken-pod")

    cluster.set_pods("api-broken-pod", state)

    status = wait_status(cluster, "broken-pod", word)
    assert detail in status["message"].lower()


def test_a_leftover_evicted_pod_does_not_make_a_live_api_an_error(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.create(RAPI, resource("evicted"))
    wait_children(cluster, "evicted")
    (evicted,) = cluster.set_pods("api-evicted", "evicted")

    def replaced() -> bool:
        pods = cluster.select("v1/pods", labels="cortex.dev/api-name=evicted")
        return len(pods) == 2

    wait_for(replaced, what="a pod in place of the evicted one")
    cluster.set_pods("api-evicted", "ready")

    status = wait_status(cluster, "evicted", "live")
    assert cluster.get("v1/pods", evicted)["status"]["reason"] == "Evicted"
    assert status["ready"] == 1


def test_an_hpa_that_cannot_read_its_metric_says_so_in_scaling_active(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.create(RAPI, resource("blind"))
    wait_children(cluster, "blind")
    cluster.set_pods("api-blind", "ready")
    wait_status(cluster, "blind", "live")

    message = "the HPA was unable to compute the replica count: unable to get metric"
    cluster.set_hpa_status(
        "api-blind", current=1, desired=1, scaling_active=(False, "FailedGetPodsMetric", message)
    )

    def scaling() -> dict[str, Any] | None:
        found = condition(status_of(cluster, "blind"), "ScalingActive")
        return found if found["status"] == "False" else None

    found = wait_for(scaling, what="ScalingActive False")
    assert found["reason"] == "FailedGetPodsMetric"
    assert message in found["message"]
    assert status_of(cluster, "blind")["status"] == "live"


def test_conditions_have_the_metav1_shape_and_observe_the_generation(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.create(RAPI, resource("shaped"))
    wait_children(cluster, "shaped")
    cluster.set_pods("api-shaped", "ready")

    status = wait_status(cluster, "shaped", "live")

    assert status["observedGeneration"] == 1
    kinds = {c["type"] for c in status["conditions"]}
    assert {"Ready", "Progressing", "ScalingActive"} <= kinds
    for found in status["conditions"]:
        assert set(found) >= {"type", "status", "reason", "message", "lastTransitionTime"}
        assert found["observedGeneration"] == 1
