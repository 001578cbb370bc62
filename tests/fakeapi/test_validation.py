"""Deployments are defaulted and validated on every write, as a real API server does it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fakeapi import FakeCluster
from tests.fakeapi.conftest import Kubectl

pytestmark = pytest.mark.timeout(60)

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
RSS = "/apis/apps/v1/namespaces/default/replicasets"
MERGE = {"Content-Type": "application/merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


def deployment(**spec: Any) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
    }
    body["spec"].update(spec)
    return body


def with_container(**container: Any) -> dict[str, Any]:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"] = [
        {"name": "app", "image": "app:1", **container}
    ]
    return body


def test_a_deployment_reads_back_with_the_servers_defaults(http: httpx.Client) -> None:
    probe = {"httpGet": {"port": 8888, "path": "/readyz"}}
    body = with_container(
        image="registry.example.com:5000/team/app",  # no tag: latest, so pulled Always
        ports=[{"containerPort": 8888}],
        readinessProbe=probe,
        lifecycle={"preStop": {"httpGet": {"port": 8888}}},
        env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    )
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "code", "configMap": {"name": "code"}}]
    spec = http.post(DEPLOYS, json=body).json()["spec"]

    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Always" and pod["dnsPolicy"] == "ClusterFirst"
    assert pod["schedulerName"] == "default-scheduler"
    assert pod["terminationGracePeriodSeconds"] == 30 and pod["securityContext"] == {}
    assert pod["volumes"][0]["configMap"]["defaultMode"] == 420
    (app,) = pod["containers"]
    assert app["imagePullPolicy"] == "Always" and app["resources"] == {}
    assert (app["terminationMessagePath"], app["terminationMessagePolicy"]) == (
        "/dev/termination-log",
        "File",
    )
    assert app["ports"] == [{"containerPort": 8888, "protocol": "TCP"}]
    assert app["readinessProbe"] == {
        "httpGet": {"port": 8888, "path": "/readyz", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert app["lifecycle"]["preStop"]["httpGet"] == {"port": 8888, "path": "/", "scheme": "HTTP"}
    assert app["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("app", "Always"),
        ("app:latest", "Always"),
        ("app:1.2", "IfNotPresent"),
        ("app@sha256:ab", "IfNotPresent"),
    ],
)
def test_the_image_pull_policy_follows_the_tag(http: httpx.Client, image: str, policy: str) -> None:
    created = http.post(DEPLOYS, json=with_container(image=image)).json()
    assert created["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == policy


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("0.5", "500m"),
        ("1000m", "1"),
        ("1.5Gi", "1536Mi"),
        ("1024Mi", "1Gi"),
        ("2000", "2k"),
        (2, "2"),
        ("100Mi", "100Mi"),
        ("1e3", "1e3"),
        ("0.1Gi", "107374182400m"),
    ],
)
def test_quantities_are_stored_in_canonical_form(
    http: httpx.Client, sent: Any, stored: str
) -> None:
    body = with_container(resources={"requests": {"memory": sent}, "limits": {"memory": sent}})
    created = http.post(DEPLOYS, json=body)
    assert created.status_code == 201, created.text
    resources = created.json()["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"memory": stored}, "limits": {"memory": stored}}


def test_defaults_come_back_when_a_patch_removes_them(http: httpx.Client) -> None:
    http.post(DEPLOYS, json=deployment(strategy={"type": "Recreate"}))
    patch = {"spec": {"strategy": None, "progressDeadlineSeconds": None}}
    patched = http.patch(f"{DEPLOYS}/web", json=patch, headers=MERGE).json()["spec"]
    assert patched["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%", "maxSurge": "25%"}
    assert patched["progressDeadlineSeconds"] == 600


def test_a_reapplied_config_that_the_server_rewrote_changes_nothing(http: httpx.Client) -> None:
    body = with_container(resources={"requests": {"cpu": "0.5"}})
    params = {"fieldManager": "cortex-operator"}
    first = http.patch(f"{DEPLOYS}/web", content=yaml.safe_dump(body), params=params, headers=APPLY)
    assert first.status_code == 201, first.text
    before = http.get(f"{DEPLOYS}/web").json()["metadata"]["resourceVersion"]  # after the status
    again = http.patch(f"{DEPLOYS}/web", content=yaml.safe_dump(body), params=params, headers=APPLY)
    assert again.json()["metadata"]["resourceVersion"] == before
    assert again.json()["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "500m"}
    }


CASES = {
    "no selector": (
        {"selector": None},
        "[spec.selector: Required value, spec.template.metadata.labels: Invalid value: "
        'map[string]string{"app":"web"}: `selector` does not match template `labels`]',
    ),
    "selector not matching": (
        {"selector": {"matchLabels": {"app": "other"}}},
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`",
    ),
    "empty selector": (
        {"selector": {}},
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
        "deployment",
    ),
    "negative replicas": (
        {"replicas": -1},
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    ),
    "no containers": (
        {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}},
        "spec.template.spec.containers: Required value",
    ),
    "both fenceposts 0": (
        {
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0},
            }
        },
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, "
        'IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0',
    ),
    "restart policy": (
        {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "a"}]},
            }
        },
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_invalid_deployment_is_a_422_with_the_real_fields_and_messages(
    http: httpx.Client, case: str
) -> None:
    spec, expected = CASES[case]
    body = deployment()
    body["spec"].update(copy.deepcopy(spec))
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    answer = http.post(DEPLOYS, json=body)
    assert answer.status_code == 422
    status = answer.json()
    assert (status["reason"], status["code"]) == ("Invalid", 422)
    assert status["message"] == f'Deployment.apps "web" is invalid: {expected}'
    assert (status["details"]["group"], status["details"]["kind"]) == ("apps", "Deployment")
    assert http.get(f"{DEPLOYS}/web").status_code == 404


def test_container_names_and_images_are_checked(http: httpx.Client) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"] = [
        {"name": "App_1", "image": "a"},
        {"name": "side"},
        {"name": "side", "image": "b"},
    ]
    causes = http.post(DEPLOYS, json=body).json()["details"]["causes"]
    where = "spec.template.spec.containers"
    assert [(c["field"], c["reason"]) for c in causes] == [
        (f"{where}[0].name", "FieldValueInvalid"),
        (f"{where}[1].image", "FieldValueRequired"),
        (f"{where}[2].name", "FieldValueDuplicate"),
    ]
    assert causes[0]["message"].startswith(
        'Invalid value: "App_1": a lowercase RFC 1123 label must consist of'
    )
    assert causes[2]["message"] == 'Duplicate value: "side"'


def test_requests_above_limits_and_gpus_without_equal_limits_are_refused(
    http: httpx.Client,
) -> None:
    resources = {
        "requests": {"cpu": "2", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "1"},
    }
    causes = http.post(DEPLOYS, json=with_container(resources=resources)).json()["details"][
        "causes"
    ]
    where = "spec.template.spec.containers[0].resources"
    assert [(c["field"], c["message"]) for c in causes] == [
        (f"{where}.requests", 'Invalid value: "2": must be less than or equal to cpu limit of 1'),
        (f"{where}.limits", "Required value: Limit must be set for non overcommitable resources"),
    ]


def test_the_selector_cannot_change(http: httpx.Client) -> None:
    http.post(DEPLOYS, json=deployment())
    moved = {
        "spec": {
            "selector": {"matchLabels": {"app": "web2"}},
            "template": {"metadata": {"labels": {"app": "web2"}}},
        }
    }
    answer = http.patch(f"{DEPLOYS}/web", json=moved, headers=MERGE)
    assert answer.status_code == 422
    replaced = http.get(f"{DEPLOYS}/web").json()  # a PUT is checked the same way
    replaced["spec"]["selector"] = moved["spec"]["selector"]
    replaced["spec"]["template"]["metadata"] = moved["spec"]["template"]["metadata"]
    put = http.put(f"{DEPLOYS}/web", json=replaced)
    assert (put.status_code, put.json()["message"]) == (422, answer.json()["message"])
    assert answer.json()["message"] == (
        'Deployment.apps "web" is invalid: spec.selector: Invalid value: '
        'v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    )


def test_a_value_of_the_wrong_type_is_a_400_decoding_error(http: httpx.Client) -> None:
    answer = http.post(DEPLOYS, json=deployment(replicas="two"))
    assert answer.status_code == 400
    assert answer.json()["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        "string into Go struct field DeploymentSpec.spec.replicas of type int32"
    )
    bad = http.post(DEPLOYS, json=with_container(resources={"limits": {"cpu": "lots"}}))
    assert bad.status_code == 400 and "quantities must match the regular expression" in bad.text


def test_apply_and_dry_runs_are_validated_too(http: httpx.Client) -> None:
    body = deployment(replicas=-2)
    applied = http.patch(
        f"{DEPLOYS}/web", content=yaml.safe_dump(body), params={"fieldManager": "x"}, headers=APPLY
    )
    assert applied.status_code == 422
    dry = http.post(DEPLOYS, params={"dryRun": "All"}, json=body)
    assert dry.status_code == 422 and "spec.replicas" in dry.json()["message"]


def test_replica_sets_are_validated_like_deployments(http: httpx.Client) -> None:
    body = deployment()
    body["kind"] = "ReplicaSet"
    del body["spec"]["selector"]
    answer = http.post(RSS, json=body)
    assert answer.status_code == 422
    assert answer.json()["message"].startswith(
        'ReplicaSet.apps "web" is invalid: [spec.selector: Required value'
    )


def test_pods_get_requests_from_their_limits_and_service_links(cluster: FakeCluster) -> None:
    body = with_container(resources={"limits": {"cpu": "1", "memory": "1Gi"}})
    cluster.create("apps/v1/deployments", body)
    (pod,) = cluster.select("v1/pods")
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert pod["spec"]["enableServiceLinks"] is True
    template = cluster.get("apps/v1/deployments", "web")["spec"]["template"]["spec"]
    assert "requests" not in template["containers"][0]["resources"]  # only pods get them


def test_kubectl_shows_the_servers_refusal(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "web.json"
    manifest.write_text(json.dumps(deployment(replicas=-1)))
    done = kubectl("apply", "-f", str(manifest), check=False)
    assert done.returncode == 1
    assert 'The Deployment "web" is invalid: spec.replicas: Invalid value: -1' in done.stderr
