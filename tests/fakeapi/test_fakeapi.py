"""The fake API server answers as a kube-apiserver would where kopf, kubectl and we rely on it."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortex.k8s import custom_resource_definition
from tests import tools
from tests.fakeapi import FakeCluster, wait_for

pytestmark = pytest.mark.timeout(60)

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
RAPIS = "/apis/cortex.dev/v1alpha1/namespaces/default/realtimeapis"
MERGE = {"Content-Type": "application/merge-patch+json"}


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def deployment(name: str, replicas: int = 2, image: str = "app:1") -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
        },
    }


def with_crd(http: httpx.Client) -> None:
    answer = http.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=custom_resource_definition()
    )
    assert answer.status_code == 201


def rapi(name: str, **spec: Any) -> dict[str, Any]:
    spec = {"predictor": {"type": "python", "path": "predictor.py"}, **spec}
    return {
        "apiVersion": "cortex.dev/v1alpha1",
        "kind": "RealtimeAPI",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_create_stamps_uid_resource_version_timestamp_and_generation(http: httpx.Client) -> None:
    first = http.post(CMS, json=configmap("a")).json()
    second = http.post(CMS, json=configmap("b")).json()
    meta = first["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert int(second["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert http.post(CMS, json=configmap("a")).status_code == 409
    named = http.post(CMS, json={"metadata": {"generateName": "x-"}}).json()["metadata"]["name"]
    assert named.startswith("x-") and len(named) == 7


def test_failed_json_patch_test_is_422_and_a_stale_resource_version_is_409(
    http: httpx.Client,
) -> None:
    rv = http.post(CMS, json=configmap("a")).json()["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "add", "path": "/data/x", "value": "1"},
    ]
    answer = http.patch(
        f"{CMS}/a", json=ops, headers={"Content-Type": "application/json-patch+json"}
    )
    assert answer.status_code == 422
    stale = {"metadata": {"resourceVersion": "0"}, "data": {"x": "1"}}
    assert http.patch(f"{CMS}/a", json=stale, headers=MERGE).status_code == 409
    fresh = {"metadata": {"resourceVersion": rv}, "data": {"x": "1"}}
    assert http.patch(f"{CMS}/a", json=fresh, headers=MERGE).json()["data"] == {"k": "v", "x": "1"}


def test_strategic_merge_merges_containers_by_name_but_is_415_for_custom_resources(
    http: httpx.Client,
) -> None:
    http.post(DEPLOYS, json=deployment("web"))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s:1"}]}}}}
    strategic = {"Content-Type": "application/strategic-merge-patch+json"}
    merged = http.patch(f"{DEPLOYS}/web", json=patch, headers=strategic).json()
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["app", "side"]
    with_crd(http)
    http.post(RAPIS, json=rapi("iris"))
    assert http.patch(f"{RAPIS}/iris", json={"spec": {}}, headers=strategic).status_code == 415


def test_label_and_field_selectors_filter_lists(http: httpx.Client) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        http.post(CMS, json=configmap(name, tier=tier))
    names = lambda **q: [i["metadata"]["name"] for i in http.get(CMS, params=q).json()["items"]]  # noqa: E731
    assert names(labelSelector="tier=web") == ["a", "c"]
    assert names(labelSelector="tier!=web") == ["b"]
    assert names(labelSelector="tier in (db, cache)") == ["b"]
    assert names(labelSelector="!tier") == []
    assert names(fieldSelector="metadata.name=c") == ["c"]
    listing = http.get(CMS).json()
    assert listing["kind"] == "ConfigMapList" and listing["metadata"]["resourceVersion"].isdigit()


def test_watch_from_a_resource_version_streams_only_newer_events(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    http.post(CMS, json=configmap("old"))
    rv = http.get(CMS).json()["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []

    def watch() -> None:
        params = {
            "watch": "true",
            "resourceVersion": rv,
            "labelSelector": "keep=yes",
            "timeoutSeconds": "5",
        }
        with httpx.stream("GET", cluster.url + CMS, params=params, timeout=10) as stream:
            for line in stream.iter_lines():
                event = json.loads(line)
                seen.append((event["type"], event["object"]["metadata"]["name"]))
                if len(seen) == 2:
                    return

    thread = threading.Thread(target=watch)
    thread.start()
    http.post(CMS, json=configmap("new", keep="yes"))
    http.post(CMS, json=configmap("skipped", keep="no"))
    http.delete(f"{CMS}/new")
    thread.join(10)
    assert seen == [("ADDED", "new"), ("DELETED", "new")]


def test_custom_resources_follow_their_crd_schema(http: httpx.Client) -> None:
    with_crd(http)
    bad = http.post(RAPIS, json=rapi("bad", compute={"gpu": -1}))
    assert bad.status_code == 422 and "spec.compute.gpu" in bad.json()["message"]
    created = http.post(RAPIS, json=rapi("iris"))
    assert created.status_code == 201, created.text
    status = {"status": {"status": "live", "undeclared": 1}, "spec": {"compute": {"gpu": 3}}}
    patched = http.patch(f"{RAPIS}/iris/status", json=status, headers=MERGE).json()
    assert patched["status"] == {"status": "live"}  # pruned, like a real server
    assert patched["spec"] == created.json()["spec"]  # the status subresource ignores the rest
    main = http.patch(f"{RAPIS}/iris", json={"status": {"status": "error"}}, headers=MERGE).json()
    assert main["status"] == {"status": "live"}  # and the main resource ignores status
    assert main["metadata"]["generation"] == 1
    strict = http.post(RAPIS, params={"fieldValidation": "Strict"}, json=rapi("x", nope=1))
    assert strict.status_code == 400 and 'unknown field "spec.nope"' in strict.json()["message"]


def test_deleting_an_owner_collects_its_dependents(http: httpx.Client) -> None:
    owner = http.post(CMS, json=configmap("owner")).json()["metadata"]
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["uid"]}
    child = {"metadata": {"name": "child", "ownerReferences": [ref]}}
    http.post(CMS, json=child)
    http.post(
        DEPLOYS,
        json={**deployment("owned"), "metadata": {"name": "owned", "ownerReferences": [ref]}},
    )
    assert len(http.get("/api/v1/namespaces/default/pods").json()["items"]) == 2

    http.delete(f"{CMS}/owner")

    assert http.get(f"{CMS}/child").status_code == 404
    assert http.get(f"{DEPLOYS}/owned").status_code == 404
    assert http.get("/api/v1/namespaces/default/pods").json()["items"] == []


def test_finalizers_hold_deletion_until_removed(http: httpx.Client) -> None:
    http.post(CMS, json={"metadata": {"name": "held", "finalizers": ["x/y"]}})
    marked = http.delete(f"{CMS}/held").json()
    assert marked["metadata"]["deletionTimestamp"]
    assert http.get(f"{CMS}/held").status_code == 200
    http.patch(f"{CMS}/held", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert http.get(f"{CMS}/held").status_code == 404


def test_dry_run_persists_nothing(http: httpx.Client) -> None:
    assert http.post(CMS, params={"dryRun": "All"}, json=configmap("dry")).status_code == 201
    assert http.get(f"{CMS}/dry").status_code == 404


def test_deployment_controller_keeps_pods_and_status_in_step(cluster: FakeCluster) -> None:
    cluster.create("apps/v1/deployments", deployment("web", replicas=2))
    status = cluster.get("apps/v1/deployments", "web")["status"]
    assert (status["replicas"], status["updatedReplicas"], status.get("readyReplicas")) == (
        2,
        2,
        None,
    )

    cluster.set_pods("web", "ready", count=1)
    assert cluster.get("apps/v1/deployments", "web")["status"]["readyReplicas"] == 1
    cluster.set_pods("web", "image-pull")
    (pod, _) = cluster.select("v1/pods", labels="app=web")
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"


def test_kmock_reactions_override_the_fake(cluster: FakeCluster, http: httpx.Client) -> None:
    cluster.react(lambda fake: fake[f"post {CMS}"][:1] << 503)
    assert http.post(CMS, json=configmap("a")).status_code == 503
    assert http.post(CMS, json=configmap("a")).status_code == 201
    assert cluster.call(lambda: len(cluster.fake[f"post {CMS}"])) == 2


def test_kubectl_works_without_disabling_validation(cluster: FakeCluster, tmp_path: Path) -> None:
    import os
    import subprocess

    kubectl_path = tools.require("kubectl")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}

    def kubectl(*args: str) -> str:
        done = subprocess.run(
            [kubectl_path, *args], env=env, capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    crd_file = tmp_path / "crd.json"
    crd_file.write_text(json.dumps(custom_resource_definition()))
    kubectl("apply", "-f", str(crd_file))
    cr_file = tmp_path / "cr.json"
    cr_file.write_text(json.dumps(rapi("iris")))
    assert "created" in kubectl("apply", "-f", str(cr_file))
    assert "unchanged" in kubectl("apply", "-f", str(cr_file))
    kubectl(
        "patch",
        "rapi",
        "iris",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"status": "live", "endpoint": "/iris"}}',
    )
    rows = [line.split() for line in kubectl("get", "rapi").splitlines()]
    assert rows[0][:3] == ["NAME", "STATUS", "REQUESTED"] and rows[1][:2] == ["iris", "live"]
    assert "deleted" in kubectl("delete", "rapi", "iris")
    wait_for(lambda: cluster.get("cortex.dev/v1alpha1/realtimeapis", "iris") is None)


def test_a_group_version_it_does_not_serve_is_the_real_not_found(http: httpx.Client) -> None:
    response = http.get("/apis/nothing.example.com/v1")
    assert response.status_code == 404
    body = response.json()
    assert (body["kind"], body["reason"]) == ("Status", "NotFound")
    assert body["message"] == "the server could not find the requested resource"
    assert not body.get("details")


def test_an_object_created_for_an_owner_that_is_gone_is_collected(cluster: FakeCluster) -> None:
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "no-such-uid"}
    body = {"metadata": {"name": "orphan", "ownerReferences": [owner]}}
    cluster.create("v1/configmaps", body, "default")
    assert cluster.get("v1/configmaps", "orphan") is None


@pytest.mark.parametrize("flag", ["1", "t", "True"])
def test_watch_is_a_go_boolean_as_the_api_server_reads_it(
    cluster: FakeCluster, http: httpx.Client, flag: str
) -> None:
    rv = http.get(CMS).json()["metadata"]["resourceVersion"]
    http.post(CMS, json=configmap("new"))

    params = {"watch": flag, "resourceVersion": rv, "timeoutSeconds": "5"}
    with httpx.stream("GET", cluster.url + CMS, params=params, timeout=10) as stream:
        first = json.loads(next(stream.iter_lines()))

    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "new")
