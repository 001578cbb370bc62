"""Server-side apply and managedFields behave as on a kube-apiserver (over real HTTP)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cortex.k8s import custom_resource_definition
from tests import tools
from tests.fakeapi import FakeCluster

pytestmark = pytest.mark.timeout(60)

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
RAPIS = "/apis/cortex.dev/v1alpha1/namespaces/default/realtimeapis"
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}


def deployment(replicas: int | None = 2, labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    meta = {"name": "web", "labels": labels or {"team": "ml"}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def rapi(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "cortex.dev/v1alpha1",
        "kind": "RealtimeAPI",
        "metadata": {"name": "iris"},
        "spec": {"predictor": {"type": "python", "path": "predictor.py"}, **spec},
    }


def apply(
    http: httpx.Client, path: str, body: Any, manager: str | None = "cortex-cli", **params: str
) -> httpx.Response:
    if manager:
        params["fieldManager"] = manager
    content = yaml.safe_dump(body) if isinstance(body, dict) else body
    return http.patch(path, content=content, params=params, headers=APPLY)


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def test_apply_needs_a_field_manager_and_creates_like_create(http: httpx.Client) -> None:
    missing = apply(http, f"{DEPLOYS}/web", deployment(), manager=None)
    assert missing.status_code == 422 and missing.json()["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )
    assert (
        http.patch(f"{CMS}/x", json={}, params={"force": "true"}, headers=MERGE).status_code == 422
    )
    created = apply(http, f"{DEPLOYS}/web", deployment())
    assert created.status_code == 201, created.text
    meta = created.json()["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["generation"] == 1
    (entry,) = meta["managedFields"]
    assert entry["manager"] == "cortex-cli" and entry["operation"] == "Apply"
    assert entry["apiVersion"] == "apps/v1" and entry["fieldsType"] == "FieldsV1"
    assert entry["time"].endswith("Z") and "subresource" not in entry
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:team": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {}},
                    }
                },
            },
        },
    }
    assert http.get(f"{DEPLOYS}/web").json()["metadata"]["managedFields"] == meta["managedFields"]


def test_apply_of_a_custom_resource_follows_its_crd_schema(http: httpx.Client) -> None:
    http.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=custom_resource_definition()
    )
    bad = apply(http, f"{RAPIS}/iris", rapi(compute={"gpu": -1}))
    assert bad.status_code == 422 and "spec.compute.gpu" in bad.json()["message"]
    strict = apply(http, f"{RAPIS}/iris", rapi(nope=1), fieldValidation="Strict")
    assert strict.status_code == 400 and 'unknown field "spec.nope"' in strict.json()["message"]
    created = apply(http, f"{RAPIS}/iris", rapi(nope=1)).json()
    assert "nope" not in created["spec"]  # pruned, like a real server
    assert created["spec"]["predictor"]["processes_per_replica"] == 1  # defaulted
    fields = managers(created)["cortex-cli", "Apply"]["fieldsV1"]
    assert fields == {"f:spec": {"f:predictor": {"f:path": {}, "f:type": {}}}}
    # the operator reports status through the subresource, as its own field manager
    status = {**rapi(), "status": {"status": "live"}}
    reported = apply(http, f"{RAPIS}/iris/status", status, manager="cortex-operator").json()
    assert reported["status"] == {"status": "live"}
    entry = managers(reported)["cortex-operator", "Apply"]
    assert entry["subresource"] == "status" and entry["fieldsV1"] == {"f:status": {"f:status": {}}}
    # a later spec apply by the CLI leaves the status and the operator's ownership alone
    again = apply(http, f"{RAPIS}/iris", rapi(), manager="cortex-cli").json()
    assert again["status"] == {"status": "live"} and ("cortex-operator", "Apply") in managers(again)
    missing = apply(http, f"{RAPIS}/nope/status", {**status, "metadata": {"name": "nope"}})
    assert missing.status_code == 404


def test_applying_the_same_config_twice_changes_nothing(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    apply(http, f"{DEPLOYS}/web", deployment())
    first = http.get(f"{DEPLOYS}/web").json()  # after the controller's status writes
    events = cluster.call(lambda: len(cluster.store.log))
    second = apply(http, f"{DEPLOYS}/web", json.dumps(deployment()))  # JSON is YAML too
    assert second.status_code == 200
    assert second.json()["metadata"] == first["metadata"]
    assert cluster.call(lambda: len(cluster.store.log)) == events  # no watch event either


def test_fields_no_longer_applied_are_removed_unless_another_manager_owns_them(
    http: httpx.Client,
) -> None:
    apply(http, f"{DEPLOYS}/web", deployment(labels={"team": "ml", "tier": "web"}))
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"tier": "web"}},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s:1"}]}}},
    }
    shared = apply(http, f"{DEPLOYS}/web", sidecar, manager="injector").json()
    containers = shared["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "side"]  # merged by name
    dropped = apply(http, f"{DEPLOYS}/web", deployment(replicas=None, labels={"x": "1"})).json()
    assert dropped["metadata"]["labels"] == {"tier": "web", "x": "1"}  # "team" went, "tier" stays
    assert dropped["spec"]["replicas"] == 1  # no longer applied: removed, then defaulted
    names = [c["name"] for c in dropped["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "side"]
    alone = copy.deepcopy(sidecar)
    alone["metadata"]["labels"] = {}
    alone["spec"]["template"]["spec"]["containers"] = [{"name": "other", "image": "o:1"}]
    left = apply(http, f"{DEPLOYS}/web", alone, manager="injector").json()
    names = [c["name"] for c in left["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "other"] and left["metadata"]["labels"] == {"x": "1"}


def test_a_field_another_manager_set_differently_is_a_conflict_unless_forced(
    http: httpx.Client,
) -> None:
    apply(http, f"{DEPLOYS}/web", deployment(replicas=2))
    scaled = {"spec": {"replicas": 5}}
    params = {"fieldManager": "kubectl-client-side-apply"}
    owner = http.patch(f"{DEPLOYS}/web", json=scaled, params=params, headers=MERGE).json()
    update = managers(owner)["kubectl-client-side-apply", "Update"]
    assert update["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in managers(owner)["cortex-cli", "Apply"]["fieldsV1"]["f:spec"]
    conflict = apply(http, f"{DEPLOYS}/web", deployment(replicas=3))
    assert conflict.status_code == 409
    status = conflict.json()
    assert status["reason"] == "Conflict" and status["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
        ".spec.replicas"
    )
    assert status["details"]["causes"] == [
        {
            "type": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    same = apply(http, f"{DEPLOYS}/web", deployment(replicas=5))  # same value: shared, no conflict
    assert same.status_code == 200
    forced = apply(http, f"{DEPLOYS}/web", deployment(replicas=3), force="true").json()
    assert forced["spec"]["replicas"] == 3
    assert ("kubectl-client-side-apply", "Update") not in managers(forced)  # it owned nothing else
    two = deployment(replicas=4, labels={"team": "infra"})
    message = apply(http, f"{DEPLOYS}/web", two, manager="other").json()["message"]
    assert message == (
        'Apply failed with 2 conflicts: conflicts with "cortex-cli":\n'
        "- .metadata.labels.team\n- .spec.replicas"
    )


def test_updates_record_their_manager_and_managed_fields_can_be_cleared(
    http: httpx.Client,
) -> None:
    created = http.post(CMS, json={"metadata": {"name": "cm"}, "data": {"a": "1"}}).json()
    (entry,) = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("python-httpx", "Update")  # the User-Agent
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}
    body = {**created, "data": {"a": "2"}}
    replaced = http.put(f"{CMS}/cm", json=body, params={"fieldManager": "editor"}).json()
    assert set(managers(replaced)) == {("editor", "Update")}  # it took the field over
    kept = http.patch(f"{CMS}/cm", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE).json()
    assert len(kept["metadata"]["managedFields"]) == 2
    cleared = {"metadata": {"managedFields": []}}
    assert (
        "managedFields"
        not in http.patch(f"{CMS}/cm", json=cleared, headers=MERGE).json()["metadata"]
    )
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    config["metadata"]["managedFields"] = [{"manager": "x"}]
    assert apply(http, f"{CMS}/cm", config).status_code == 400


def test_dry_run_apply_persists_nothing(http: httpx.Client) -> None:
    answer = apply(http, f"{DEPLOYS}/web", deployment(), dryRun="All")
    assert answer.status_code == 201 and answer.json()["metadata"]["managedFields"]
    assert http.get(f"{DEPLOYS}/web").status_code == 404


def test_the_python_client_applies_and_sees_conflicts(cluster: FakeCluster) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    api_client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core = kubernetes.client.CoreV1Api(api_client)
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "proj"},
        "data": {"a": "1"},
    }
    options = {"field_manager": "cortex-cli", "_content_type": APPLY["Content-Type"]}
    created = core.patch_namespaced_config_map("proj", "default", body, **options)
    assert created.data == {"a": "1"}
    assert created.metadata.managed_fields[0].manager == "cortex-cli"
    other = {**body, "data": {"a": "2"}}
    with pytest.raises(kubernetes.client.ApiException) as caught:
        core.patch_namespaced_config_map(
            "proj", "default", other, field_manager="x", _content_type=APPLY["Content-Type"]
        )
    assert caught.value.status == 409
    forced = core.patch_namespaced_config_map(
        "proj", "default", other, field_manager="x", force=True, _content_type=APPLY["Content-Type"]
    )
    assert forced.data == {"a": "2"}
    api_client.close()


def test_the_python_client_applies_custom_resources(cluster: FakeCluster) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    with kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig)) as client:
        kubernetes.client.ApiextensionsV1Api(client).create_custom_resource_definition(
            custom_resource_definition()
        )
        custom = kubernetes.client.CustomObjectsApi(client)
        where = ("cortex.dev", "v1alpha1", "default", "realtimeapis", "iris")
        options = {"field_manager": "cortex-cli", "_content_type": APPLY["Content-Type"]}
        # An apply that creates answers 201, which this API's generated code does not map (only
        # 200): the call returns None on a real cluster too, so callers must read the object.
        assert custom.patch_namespaced_custom_object(*where, rapi(), **options) is None
        created = custom.get_namespaced_custom_object(*where)
        assert created["metadata"]["managedFields"][0]["manager"] == "cortex-cli"
        again = custom.patch_namespaced_custom_object(*where, rapi(), **options)
        assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        status = {**rapi(), "status": {"status": "live"}}
        options["field_manager"] = "cortex-operator"
        reported = custom.patch_namespaced_custom_object_status(*where, status, **options)
        assert reported["status"] == {"status": "live"}


def test_kubectl_server_side_apply(cluster: FakeCluster, tmp_path: Path) -> None:
    kubectl_path = tools.require("kubectl")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}

    def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl_path, *args], env=env, capture_output=True, text=True, timeout=30, check=check
        )

    manifest = tmp_path / "web.yaml"
    manifest.write_text(yaml.safe_dump(deployment(replicas=2)))
    kubectl("apply", "-f", str(manifest))  # client-side first, as a user upgrading would
    manifest.write_text(yaml.safe_dump(deployment(replicas=3)))
    refused = kubectl("apply", "--server-side", "-f", str(manifest), check=False)
    assert refused.returncode != 0
    assert (
        'conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas' in refused.stderr
    )
    done = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifest))
    assert "serverside-applied" in done.stdout
    web = cluster.get("apps/v1/deployments", "web")
    assert web is not None and web["spec"]["replicas"] == 3
    assert ("kubectl", "Apply") in managers(web)
    rv = web["metadata"]["resourceVersion"]
    kubectl("apply", "--server-side", "-f", str(manifest))
    assert cluster.get("apps/v1/deployments", "web")["metadata"]["resourceVersion"] == rv


def test_associative_lists_merge_by_their_keys_and_others_are_atomic(http: httpx.Client) -> None:
    container = {
        "name": "app",
        "image": "app:1",
        "env": [{"name": "A", "value": "1"}],
        "ports": [{"containerPort": 8080}],
        "volumeMounts": [{"name": "m", "mountPath": "/m"}],
        "args": ["--one"],
    }
    config = deployment()
    config["metadata"]["finalizers"] = ["cortex.dev/cleanup"]
    config["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-1"}
    ]
    pod_spec = config["spec"]["template"]["spec"]
    pod_spec["containers"] = [container]
    pod_spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    fields = apply(http, f"{DEPLOYS}/web", config).json()["metadata"]["managedFields"][0]
    meta = fields["fieldsV1"]["f:metadata"]
    assert meta["f:finalizers"] == {'v:"cortex.dev/cleanup"': {}}
    assert list(meta["f:ownerReferences"]) == ['k:{"uid":"u-1"}']
    spec = fields["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    app = spec["f:containers"]['k:{"name":"app"}']
    assert list(app["f:env"]) == ['k:{"name":"A"}']
    assert list(app["f:ports"]) == ['k:{"containerPort":8080,"protocol":"TCP"}']
    assert list(app["f:volumeMounts"]) == ['k:{"mountPath":"/m"}']
    assert app["f:args"] == {} and spec["f:tolerations"] == {}  # atomic: owned whole
    extra = copy.deepcopy(config)
    extra["metadata"] = {"name": "web"}
    extra_container = {
        "name": "app",
        "env": [{"name": "B", "value": "2"}],
        "ports": [{"containerPort": 9090}],
    }
    extra["spec"] = {"template": {"spec": {"containers": [extra_container]}}}
    merged = apply(http, f"{DEPLOYS}/web", extra, manager="metrics").json()
    (app_now,) = merged["spec"]["template"]["spec"]["containers"]
    assert [e["name"] for e in app_now["env"]] == ["A", "B"]
    assert [p["containerPort"] for p in app_now["ports"]] == [8080, 9090]
    args = {**extra_container, "args": ["--two"]}
    extra["spec"]["template"]["spec"]["containers"] = [args]
    conflict = apply(http, f"{DEPLOYS}/web", extra, manager="metrics").json()["message"]
    assert conflict == (
        'Apply failed with 1 conflict: conflict with "cortex-cli": '
        '.spec.template.spec.containers[name="app"].args'
    )


def test_replicas_an_applier_stops_owning_default_to_one_unless_the_hpa_owns_them(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    apply(http, f"{DEPLOYS}/web", deployment(replicas=3), manager="cortex-operator")
    dropped = apply(http, f"{DEPLOYS}/web", deployment(replicas=None), manager="cortex-operator")
    assert dropped.json()["spec"]["replicas"] == 1  # removed, then defaulted: a scale-down
    apply(http, f"{DEPLOYS}/web", deployment(replicas=3), manager="cortex-operator")
    scaled = {"spec": {"replicas": 5}}
    cluster.patch("apps/v1/deployments", "web", scaled, manager="kube-controller-manager")
    apply(http, f"{DEPLOYS}/web", deployment(replicas=5), manager="cortex-operator")  # co-own
    kept = apply(http, f"{DEPLOYS}/web", deployment(replicas=None), manager="cortex-operator")
    assert kept.json()["spec"]["replicas"] == 5
