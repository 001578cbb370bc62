"""The operator's autoscaler setting over HTTP: ``keda`` makes a ScaledObject (no HPA), whose
conditions show in the API's ScalingActive; switching the setting removes the old autoscaler.

The fake serves KEDA's ScaledObject from the test CRD (its schema: the fields cortex uses);
nothing plays KEDA, so the tests write the ScaledObject's status as KEDA would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cortex.k8s import Autoscaler, OperatorSettings
from tests.fakeapi import FakeCluster, wait_for
from tests.operator.conftest import (
    CLUSTER_WIDE,
    HPAS,
    RAPI,
    ROOT,
    SCALED_OBJECTS,
    OperatorCalls,
    documents,
    operator_cluster,
    rbac_objects,
    resource,
    running,
    serve_keda,
    status_of,
    wait_status,
)

pytestmark = pytest.mark.timeout(120)

KEDA = OperatorSettings(autoscaler=Autoscaler.KEDA, prometheus_url="http://prom.monitoring:9090")
HPA = OperatorSettings(autoscaler=Autoscaler.HPA)
QUICK = {"retry_delay": 0.2, "slow_retry": 0.5}


def scaling_active(cluster: FakeCluster, name: str, namespace: str) -> dict[str, Any]:
    conditions = status_of(cluster, name, namespace).get("conditions") or []
    return next((c for c in conditions if c["type"] == "ScalingActive"), {})


def keda_reports(cluster: FakeCluster, name: str, namespace: str, *conditions: Any) -> None:
    """Write the ScaledObject's status as the KEDA operator does."""
    change = {"status": {"conditions": [dict(c) for c in conditions]}}
    cluster.patch(
        SCALED_OBJECTS, f"api-{name}", change, namespace, subresource="status", manager="keda"
    )


def test_keda_creates_a_scaled_object_and_no_hpa(cluster: FakeCluster) -> None:
    serve_keda(cluster)
    body = resource("iris", autoscaling={"min_replicas": 2, "max_replicas": 6, "window": "2m"})
    with running(settings=KEDA, **QUICK):
        cluster.create(RAPI, body)
        scaled = wait_for(
            lambda: cluster.get(SCALED_OBJECTS, "api-iris", "default"), what="the ScaledObject"
        )
        cluster.set_pods("api-iris", "ready", count=2)
        wait_status(cluster, "iris", "live", namespace="default")

        assert cluster.get(HPAS, "api-iris", "default") is None
        assert scaled["spec"]["scaleTargetRef"]["kind"] == "RealtimeAPI"
        assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 6)
        [trigger] = scaled["spec"]["triggers"]
        assert trigger["metadata"]["serverAddress"] == "http://prom.monitoring:9090"
        assert trigger["metadata"]["query"].endswith('api_name="iris"}[2m]))')


def test_the_scaled_object_conditions_show_in_scaling_active(cluster: FakeCluster) -> None:
    serve_keda(cluster)
    with running(settings=KEDA, **QUICK):
        cluster.create(RAPI, resource("iris"))
        wait_for(lambda: cluster.get(SCALED_OBJECTS, "api-iris", "default"), what="it")
        wait_for(
            lambda: (
                scaling_active(cluster, "iris", "default").get("reason") == "NoAutoscaler"
                or scaling_active(cluster, "iris", "default").get("reason") == "AutoscalerPending"
            ),
            what="no word from KEDA yet",
        )

        keda_reports(
            cluster,
            "iris",
            "default",
            {"type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed",
             "message": "error querying prometheus"},
        )  # fmt: skip
        failing = wait_for(
            lambda: (
                (c := scaling_active(cluster, "iris", "default")).get("status") == "False" and c
            ),
            what="ScalingActive False",
        )
        assert failing["reason"] == "ScaledObjectCheckFailed"
        assert failing["message"] == "the ScaledObject is not ready: error querying prometheus"

        keda_reports(
            cluster,
            "iris",
            "default",
            {"type": "Ready", "status": "True", "reason": "ScaledObjectReady", "message": ""},
            {"type": "Active", "status": "True", "reason": "ScalerActive",
             "message": "Scaling is performed because triggers are active"},
        )  # fmt: skip
        wait_for(
            lambda: scaling_active(cluster, "iris", "default").get("status") == "True",
            what="ScalingActive True",
        )


def _switch_autoscaler(cluster: FakeCluster, namespace: str | None, where: str) -> None:
    """hpa -> keda -> hpa, restarting the operator each time: the old autoscaler goes."""
    serve_keda(cluster)
    if where != "default":
        cluster.create("v1/namespaces", {"metadata": {"name": where}})
    with running(namespace, settings=HPA, **QUICK):
        cluster.create(RAPI, resource("iris"), namespace=where)
        wait_for(lambda: cluster.get(HPAS, "api-iris", where), what="the HPA")

    with running(namespace, settings=KEDA, **QUICK):
        wait_for(lambda: cluster.get(SCALED_OBJECTS, "api-iris", where), what="the ScaledObject")
        wait_for(lambda: cluster.get(HPAS, "api-iris", where) is None, what="the HPA deleted")

    with running(namespace, settings=HPA, **QUICK):
        wait_for(lambda: cluster.get(HPAS, "api-iris", where), what="the HPA again")
        wait_for(
            lambda: cluster.get(SCALED_OBJECTS, "api-iris", where) is None,
            what="the ScaledObject deleted",
        )
        cluster.patch(RAPI, "iris", {"spec": {"autoscaling": {"max_replicas": 7}}}, where)
        wait_for(
            lambda: cluster.get(HPAS, "api-iris", where)["spec"]["maxReplicas"] == 7,
            what="the HPA updated",
        )
        assert cluster.get(SCALED_OBJECTS, "api-iris", where) is None


def test_switching_the_autoscaler_removes_the_old_one(cluster: FakeCluster) -> None:
    _switch_autoscaler(cluster, "default", "default")


def test_switching_the_autoscaler_watching_all_namespaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operator_calls: OperatorCalls
) -> None:
    # the ClusterRole of operator/rbac.yaml: test_zz_rbac checks what this used against it
    rbac = rbac_objects(documents((ROOT / "operator" / "rbac.yaml").read_text()))
    with operator_cluster(tmp_path, monkeypatch, rbac, operator_calls, CLUSTER_WIDE) as cluster:
        _switch_autoscaler(cluster, None, "ml")


def test_an_hpa_of_another_name_with_our_labels_is_not_read_as_ours(cluster: FakeCluster) -> None:
    # e.g. the HPA KEDA made for the ScaledObject of the last setting (keda-hpa-api-<name>,
    # with the ScaledObject's labels), until the garbage collector removes it
    with running(settings=HPA, **QUICK):
        cluster.create(RAPI, resource("iris"))
        ours = wait_for(lambda: cluster.get(HPAS, "api-iris", "default"), what="our HPA")
        cluster.set_hpa_status(
            "api-iris", scaling_active=(True, "ValidMetricFound", "ours"), namespace="default"
        )
        wait_for(
            lambda: scaling_active(cluster, "iris", "default").get("message") == "ours",
            what="our HPA's word",
        )
        theirs = {
            "metadata": {"name": "keda-hpa-api-iris", "labels": ours["metadata"]["labels"]},
            "spec": {**ours["spec"], "behavior": {}},
        }
        cluster.create(HPAS, theirs, namespace="default")
        cluster.set_hpa_status(
            "keda-hpa-api-iris",
            scaling_active=(False, "FailedGetExternalMetric", "theirs"),
            namespace="default",
        )
        cluster.set_pods("api-iris", "ready", namespace="default")  # a pass after theirs
        wait_status(cluster, "iris", "live", namespace="default")

        assert scaling_active(cluster, "iris", "default")["message"] == "ours"
        assert cluster.get(HPAS, "keda-hpa-api-iris", "default") is not None  # not ours to delete
