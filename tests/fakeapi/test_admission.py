"""Injected admission rejections read as ResourceQuota, PodSecurity and webhooks word them, and
the controllers report them as the real ones do."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakeapi import FakeCluster

pytestmark = pytest.mark.timeout(60)

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
DEPLOYMENTS = "apps/v1/deployments"
REPLICASETS = "apps/v1/replicasets"


def deployment(**pod: Any) -> dict[str, Any]:
    spec = {"containers": [{"name": "api", "image": "api:1"}], **pod}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec},
        },
    }


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), None)


def test_a_quota_refusal_is_the_resource_quota_plugins_403(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    cluster.reject("configmaps", kind="quota")
    answer = http.post(CMS, json={"metadata": {"name": "big"}})
    assert answer.status_code == 403
    status = answer.json()
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'configmaps "big" is forbidden: exceeded quota: compute-resources, requested: '
        "configmaps=1, used: configmaps=10, limited: configmaps=10"
    )
    assert status["details"] == {"name": "big", "kind": "configmaps"}
    dry = http.post(CMS, params={"dryRun": "All"}, json={"metadata": {"name": "big"}})
    assert dry.status_code == 403  # admission runs on dry runs too

    cluster.admit_all()
    assert http.post(CMS, json={"metadata": {"name": "big"}}).status_code == 201


def test_refused_pods_are_a_replica_failure_until_the_refusal_ends(cluster: FakeCluster) -> None:
    gpus = "requests.nvidia.com/gpu"
    quota = f"gpu-quota, requested: {gpus}=1, used: {gpus}=4, limited: {gpus}=4"
    cluster.reject("pods", kind="quota", message=quota)
    cluster.create(DEPLOYMENTS, deployment())

    assert cluster.select("v1/pods") == []
    (rs,) = cluster.select(REPLICASETS)
    failure = condition(rs, "ReplicaFailure")
    assert failure is not None
    assert (failure["status"], failure["reason"]) == ("True", "FailedCreate")
    prefix = f'pods "{rs["metadata"]["name"]}-'
    assert failure["message"].startswith(prefix)
    assert failure["message"].endswith(f'" is forbidden: exceeded quota: {quota}')
    mirrored = condition(cluster.get(DEPLOYMENTS, "web"), "ReplicaFailure")
    assert mirrored is not None
    assert (mirrored["reason"], mirrored["message"]) == ("FailedCreate", failure["message"])
    created = condition(cluster.get(DEPLOYMENTS, "web"), "Progressing")  # no progress since
    assert created is not None and created["reason"] == "NewReplicaSetCreated"
    assert created["message"] == f'Created new replica set "{rs["metadata"]["name"]}"'
    events = [e for e in cluster.select("v1/events") if e["reason"] == "FailedCreate"]
    assert events  # one per attempt: each tried another generated name
    for event in events:
        assert event["type"] == "Warning" and event["involvedObject"]["kind"] == "ReplicaSet"
        assert event["message"].startswith(f"Error creating: {prefix}")

    cluster.admit_all()  # the controller retries when the rules change

    assert len(cluster.select("v1/pods")) == 2
    assert condition(cluster.get(REPLICASETS, rs["metadata"]["name"]), "ReplicaFailure") is None
    assert condition(cluster.get(DEPLOYMENTS, "web"), "ReplicaFailure") is None


def test_pod_security_names_what_each_container_lacks(cluster: FakeCluster) -> None:
    cluster.reject("pods", kind="pod-security")
    cluster.create(DEPLOYMENTS, deployment())
    (rs,) = cluster.select(REPLICASETS)
    message = condition(rs, "ReplicaFailure")["message"]  # type: ignore[index]
    assert message.split(" is forbidden: ", 1)[1] == (
        'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "api" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "api" must set '
        'securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container '
        '"api" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container '
        '"api" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )


def test_pod_security_admits_a_restricted_pod(cluster: FakeCluster) -> None:
    cluster.reject("pods", kind="pod-security")
    context = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    body = deployment(
        securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    )
    body["spec"]["template"]["spec"]["containers"][0]["securityContext"] = context
    cluster.create(DEPLOYMENTS, body)
    assert len(cluster.select("v1/pods")) == 2
    with pytest.raises(ValueError, match="pods only"):
        cluster.reject("deployments.apps", kind="pod-security")


def test_a_denying_webhook_names_itself_and_keeps_to_its_verbs_and_namespace(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    why = "images must come from registry.example.com"
    cluster.reject(
        "deployments.apps",
        kind="webhook",
        webhook="images.policy.example.com",
        message=why,
        verbs=("update",),
    )
    assert http.post(DEPLOYS, json=deployment()).status_code == 201
    merge = {"Content-Type": "application/merge-patch+json"}
    answer = http.patch(f"{DEPLOYS}/web", json={"spec": {"replicas": 3}}, headers=merge)
    assert answer.status_code == 403
    assert (
        answer.json()["message"]
        == f'admission webhook "images.policy.example.com" denied the request: {why}'
    )
    scale = http.patch(f"{DEPLOYS}/web/scale", json={"spec": {"replicas": 3}}, headers=merge)
    assert scale.status_code == 200  # a subresource is not the resource a webhook names

    cluster.admit_all()
    cluster.reject("configmaps", kind="webhook", namespace="elsewhere")
    assert http.post(CMS, json={"metadata": {"name": "here"}}).status_code == 201


def test_a_refused_replica_set_is_a_progressing_failure(cluster: FakeCluster) -> None:
    cluster.reject("replicasets.apps", kind="webhook", message="no")
    cluster.create(DEPLOYMENTS, deployment())
    assert cluster.select(REPLICASETS) == []
    progressing = condition(cluster.get(DEPLOYMENTS, "web"), "Progressing")
    assert progressing is not None
    assert (progressing["status"], progressing["reason"]) == ("False", "ReplicaSetCreateError")
    assert progressing["message"].startswith('Failed to create new replica set "web-')
    assert progressing["message"].endswith(
        '": admission webhook "validate.policy.example.com" denied the request: no'
    )

    cluster.admit_all()

    assert len(cluster.select(REPLICASETS)) == 1
    assert len(cluster.select("v1/pods")) == 2
    assert (
        condition(cluster.get(DEPLOYMENTS, "web"), "Progressing")["reason"] == "ReplicaSetUpdated"
    )  # type: ignore[index]


def test_a_rule_can_refuse_deletes(cluster: FakeCluster, http: httpx.Client) -> None:
    http.post(CMS, json={"metadata": {"name": "kept"}})
    cluster.reject("configmaps", kind="webhook", verbs=("delete",))
    assert http.delete(f"{CMS}/kept").status_code == 403
    assert http.get(f"{CMS}/kept").status_code == 200
