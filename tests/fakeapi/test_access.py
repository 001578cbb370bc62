"""401s and 403s as a kube-apiserver words them, seen through httpx, kubectl and the client."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from cortex.k8s import custom_resource_definition
from tests import tools
from tests.fakeapi import FakeCluster

pytestmark = pytest.mark.timeout(60)

CMS = "/api/v1/namespaces/default/configmaps"
RAPIS = "/apis/cortex.dev/v1alpha1/namespaces/default/realtimeapis"


def test_a_token_is_required_when_the_cluster_has_one(tmp_path: Path) -> None:
    with FakeCluster(tmp_path, token="secret") as cluster:
        user = yaml.safe_load(cluster.kubeconfig.read_text())["users"][0]["user"]
        assert user == {"token": "secret"}
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = httpx.get(cluster.url + CMS, headers=headers)
            assert answer.status_code == 401
            assert answer.json() == {
                "apiVersion": "v1",
                "kind": "Status",
                "metadata": {},
                "status": "Failure",
                "message": "Unauthorized",
                "reason": "Unauthorized",
                "code": 401,
            }
        assert httpx.get(cluster.url + "/api", headers={}).status_code == 401
        good = {"Authorization": "Bearer secret"}
        assert httpx.get(cluster.url + CMS, headers=good).status_code == 200
        kubernetes = pytest.importorskip("kubernetes")
        client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        with client:
            items = kubernetes.client.CoreV1Api(client).list_namespaced_config_map("default")
        assert items.items == []


def test_denied_requests_get_the_rbac_answer(cluster: FakeCluster) -> None:
    http = httpx.Client(base_url=cluster.url, timeout=10)
    http.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=custom_resource_definition()
    )
    cluster.deny("create", "configmaps")
    cluster.deny("list", "realtimeapis.cortex.dev")
    cluster.deny("get", "pods/log", namespace="kube-system")
    refused = http.post(CMS, json={"metadata": {"name": "cm"}})
    assert refused.status_code == 403
    status = refused.json()
    assert status["reason"] == "Forbidden" and status["code"] == 403
    assert status["message"] == (
        'configmaps is forbidden: User "fake-user" cannot create resource "configmaps" '
        'in API group "" in the namespace "default"'
    )
    assert status["details"] == {"kind": "configmaps"}  # the core group: omitempty
    assert http.get(CMS).status_code == 200  # only the denied verb
    listing = http.get(RAPIS).json()
    assert listing["message"] == (
        'realtimeapis.cortex.dev is forbidden: User "fake-user" cannot list resource '
        '"realtimeapis" in API group "cortex.dev" in the namespace "default"'
    )
    assert listing["details"] == {"kind": "realtimeapis", "group": "cortex.dev"}
    everywhere = http.get("/apis/cortex.dev/v1alpha1/realtimeapis").json()
    assert everywhere["message"].endswith('in API group "cortex.dev" at the cluster scope')
    logs = http.get("/api/v1/namespaces/kube-system/pods/x/log").json()
    assert logs["message"] == (
        'pods "x" is forbidden: User "fake-user" cannot get resource "pods/log" '
        'in API group "" in the namespace "kube-system"'
    )
    assert http.get("/api/v1/namespaces/default/pods/x/log").status_code == 404
    cluster.allow_all()
    assert http.post(CMS, json={"metadata": {"name": "cm"}}).status_code == 201
    http.close()


def test_kubectl_shows_the_forbidden_message(cluster: FakeCluster, tmp_path: Path) -> None:
    kubectl_path = tools.require("kubectl")
    cluster.deny("list", "configmaps")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    done = subprocess.run(
        [kubectl_path, "get", "configmaps"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0
    assert (
        'Error from server (Forbidden): configmaps is forbidden: User "fake-user" cannot list '
        'resource "configmaps" in API group "" in the namespace "default"'
    ) in done.stderr
