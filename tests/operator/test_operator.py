"""The operator (kopf, embedded) against the fake API server over real HTTP."""

from __future__ import annotations

import datetime
import re
import time

import pytest

from cortex.k8s import OperatorSettings
from cortex.operator.state import State
from tests.fakeapi import FakeCluster, wait_for
from tests.operator.conftest import (
    CHILDREN,
    DEPLOYMENTS,
    HPAS,
    INGRESS_ROUTING,
    RAPI,
    Operator,
    events_of,
    resource,
    running,
    status_of,
    wait_children,
    wait_status,
)

pytestmark = pytest.mark.timeout(120)


def test_create_renders_gpu_deployment_service_ingress_and_hpa(
    cluster: FakeCluster, operator: Operator
) -> None:
    api = cluster.create(RAPI, resource("gpu-api", compute={"gpu": 2, "mem": "1Gi"}))
    children = wait_children(cluster, "gpu-api")

    pod = children[DEPLOYMENTS]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert children[DEPLOYMENTS]["spec"]["replicas"] == 1
    hpa = children[HPAS]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 100)
    assert (hpa["scaleTargetRef"]["kind"], hpa["scaleTargetRef"]["name"]) == (
        "RealtimeAPI",
        "gpu-api",
    )
    for child in children.values():
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"]) == ("RealtimeAPI", api["metadata"]["uid"])
        assert child["metadata"]["labels"]["cortex.dev/api-name"] == "gpu-api"
    wait_for(lambda: status_of(cluster, "gpu-api").get("observedGeneration") == 1, what="gen 1")
    status = wait_status(cluster, "gpu-api", "updating")
    assert status["endpoint"] == "/gpu-api"
    assert not cluster.get(RAPI, "gpu-api")["metadata"].get("finalizers")


def test_spec_update_patches_children_in_place_and_keeps_the_scaled_replicas(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.create(RAPI, resource("iris", compute={"gpu": 1}))
    before = wait_children(cluster, "iris")
    wait_status(cluster, "iris", "updating")
    cluster.patch(RAPI, "iris", {"spec": {"replicas": 3}})  # as the HPA would, through /scale
    wait_for(
        lambda: cluster.get(DEPLOYMENTS, "api-iris")["spec"]["replicas"] == 3,
        what="the Deployment scaled",
    )

    cluster.patch(
        RAPI, "iris", {"spec": {"compute": {"gpu": 2}, "autoscaling": {"max_replicas": 7}}}
    )

    def updated() -> bool:
        deployment = cluster.get(DEPLOYMENTS, "api-iris")
        limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        return (
            limits["nvidia.com/gpu"] == "2"
            and cluster.get(HPAS, "api-iris")["spec"]["maxReplicas"] == 7
        )

    wait_for(updated, what="the children to follow the new spec")
    assert cluster.get(DEPLOYMENTS, "api-iris")["spec"]["replicas"] == 3
    for res in CHILDREN:
        assert cluster.get(res, "api-iris")["metadata"]["uid"] == before[res]["metadata"]["uid"]
        assert None not in cluster.history(res, "api-iris"), f"{res} was deleted and recreated"
    wait_for(lambda: status_of(cluster, "iris").get("observedGeneration") == 3, what="generation")


def test_ready_deployment_makes_the_api_live_and_posts_events(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.create(RAPI, resource("live-api", autoscaling={"min_replicas": 2}))
    wait_children(cluster, "live-api")
    wait_status(cluster, "live-api", "updating")

    cluster.set_pods("api-live-api", "ready")

    status = wait_status(cluster, "live-api", "live")
    assert (status["requested"], status["ready"], status["upToDate"]) == (2, 2, 2)
    assert status["conditions"][0]["type"] == "Ready"
    assert status["conditions"][0]["status"] == "True"
    reasons = wait_for(
        lambda: {e["reason"] for e in events_of(cluster, "live-api")} >= {"Updating", "Live"},
        what="the status change events",
    )
    assert reasons


@pytest.mark.parametrize(
    ("state", "word", "detail"),
    [
        ("image-pull", "error (image pull)", "ImagePullBackOff"),
        ("oom", "error (out of memory)", "OOM-killed"),
        ("crash", "error", "exit code 1"),
    ],
)
def test_failing_pods_make_the_status_an_error(
    cluster: FakeCluster, operator: Operator, state: str, word: str, detail: str
) -> None:
    cluster.create(RAPI, resource("broken"))
    wait_children(cluster, "broken")

    (pod,) = cluster.set_pods("api-broken", state)

    status = wait_status(cluster, "broken", word)
    assert pod in status["message"] and detail in status["message"]
    assert status["conditions"][0]["status"] == "False"
    wait_for(
        lambda: any(e["type"] == "Warning" for e in events_of(cluster, "broken")),
        what="a Warning event",
    )


def test_pod_unschedulable_for_long_is_compute_unavailable_without_polling(
    cluster: FakeCluster,
) -> None:
    with running(retry_delay=0.2, stall_after=1.5):
        cluster.create(RAPI, resource("big", compute={"gpu": 8}))
        wait_children(cluster, "big")
        cluster.set_pods("api-big", "unschedulable")
        wait_status(cluster, "big", "updating")
        # No object changes from here on: only the operator's own timer can change the status.
        status = wait_status(cluster, "big", "compute unavailable", timeout=10)
        assert "Insufficient nvidia.com/gpu" in status["message"]


def test_pod_unschedulable_since_long_ago_is_compute_unavailable_at_once(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.create(RAPI, resource("huge", compute={"gpu": 16}))
    wait_children(cluster, "huge")
    an_hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    cluster.set_pods("api-huge", "unschedulable", since=an_hour_ago)
    wait_status(cluster, "huge", "compute unavailable")


def test_invalid_spec_is_an_error_with_its_message_and_no_retry_loop(
    cluster: FakeCluster, operator: Operator
) -> None:
    # min > max passes the CRD schema (a cross-field rule): only the operator can reject it.
    cluster.create(RAPI, resource("bad", autoscaling={"min_replicas": 5, "max_replicas": 2}))

    status = wait_status(cluster, "bad", "error")
    assert "autoscaling.min_replicas" in status["message"]
    assert "max_replicas (2)" in status["message"]
    assert status["conditions"][0]["reason"] == "InvalidSpec"
    assert cluster.get(DEPLOYMENTS, "api-bad") is None

    def calls() -> int:
        path = re.compile(r"/realtimeapis/bad(/status)?$")
        return sum(1 for m, p, _ in cluster.served() if m == "PATCH" and path.search(p))

    # kopf's own bookkeeping patches may land after the status (late under load): first wait
    # for a second without any patch (a retry loop, every 0.2 s, never gives one), then watch.
    def quiet() -> int | None:
        before = calls()
        time.sleep(1.0)
        return before if calls() == before else None

    settled = wait_for(quiet, timeout=20, what="the patches to stop")
    time.sleep(2.0)  # ten retry delays: a retry loop would patch the resource again meanwhile
    assert calls() == settled

    cluster.patch(RAPI, "bad", {"spec": {"autoscaling": {"max_replicas": 9}}})
    wait_children(cluster, "bad")
    # The Deployment's watch event may publish "updating" before the reconcile of generation 2
    # records observedGeneration: wait for both.
    status = wait_for(
        lambda: (s := status_of(cluster, "bad")).get("observedGeneration") == 2 and s,
        what="the fixed spec observed",
    )
    assert status["status"] == "updating"
    assert status["message"] != ""


def test_transient_api_errors_are_retried(cluster: FakeCluster, operator: Operator) -> None:
    applies = "patch /apis/apps/v1/namespaces/default/deployments/api-flaky"
    cluster.react(lambda fake: fake[applies][:2] << 503)

    cluster.create(RAPI, resource("flaky"))

    wait_children(cluster, "flaky")
    assert cluster.call(lambda: len(cluster.fake[applies])) == 3
    wait_status(cluster, "flaky", "updating")


def test_deleting_the_resource_deletes_its_children(
    cluster: FakeCluster, operator: Operator
) -> None:
    cluster.create(RAPI, resource("gone"))
    wait_children(cluster, "gone")
    wait_status(cluster, "gone", "updating")
    assert not cluster.get(RAPI, "gone")["metadata"].get("finalizers")

    cluster.delete(RAPI, "gone")

    assert cluster.get(RAPI, "gone") is None
    for res in CHILDREN:
        assert cluster.get(res, "api-gone") is None
    assert cluster.select("v1/pods", labels="cortex.dev/api-name=gone") == []


def test_restart_creates_no_duplicates_and_writes_nothing(cluster: FakeCluster) -> None:
    with running(retry_delay=0.2):
        cluster.create(RAPI, resource("steady"))
        wait_children(cluster, "steady")
        cluster.set_pods("api-steady", "ready")
        wait_status(cluster, "steady", "live")
        wait_for(lambda: len(events_of(cluster, "steady")) == 2, what="two events")
    uids = {res: cluster.get(res, "api-steady")["metadata"]["uid"] for res in CHILDREN}
    versions = {res: len(cluster.history(res, "api-steady")) for res in (*CHILDREN, RAPI)}
    mark = len(cluster.served())
    state = State(OperatorSettings(namespace="default", **INGRESS_ROUTING), retry_delay=0.2)

    with running(state=state):
        wait_for(lambda: "steady" in {name for _, name in state.seen}, what="the API checked")
        time.sleep(0.5)  # let any (wrong) write or event land

    writes = [(m, p, c) for m, p, c in cluster.served()[mark:] if m in ("POST", "PATCH", "PUT")]
    assert writes == []
    for res in CHILDREN:
        (child,) = cluster.select(res, labels="cortex.dev/api-name=steady")
        assert child["metadata"]["uid"] == uids[res]
    assert {res: len(cluster.history(res, "api-steady")) for res in (*CHILDREN, RAPI)} == versions
    assert len(events_of(cluster, "steady")) == 2
    assert status_of(cluster, "steady")["status"] == "live"


def test_spec_changed_while_the_operator_was_down_is_applied_on_restart(
    cluster: FakeCluster,
) -> None:
    with running(retry_delay=0.2):
        cluster.create(RAPI, resource("late", predictor={"env": {"MODE": "a"}}))
        wait_children(cluster, "late")
    uid = cluster.get(DEPLOYMENTS, "api-late")["metadata"]["uid"]

    cluster.patch(RAPI, "late", {"spec": {"predictor": {"env": {"MODE": "b"}}}})
    with running(retry_delay=0.2):

        def mode() -> str | None:
            container = cluster.get(DEPLOYMENTS, "api-late")["spec"]["template"]["spec"][
                "containers"
            ][0]
            return next((e["value"] for e in container["env"] if e["name"] == "MODE"), None)

        wait_for(lambda: mode() == "b", what="the new environment")
    assert cluster.get(DEPLOYMENTS, "api-late")["metadata"]["uid"] == uid
