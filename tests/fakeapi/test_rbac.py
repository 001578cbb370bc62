"""Users, RBAC from installed roles, OwnerReferencesPermissionEnforcement and the request log,
seen over HTTP as a kube-apiserver answers them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests import tools
from tests.fakeapi import FakeCluster
from tests.fakeapi.access import Record

pytestmark = pytest.mark.timeout(60)

BOT = "system:serviceaccount:default:bot"
ROLES = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: apps, namespace: default}
rules:
  - {apiGroups: [apps], resources: [deployments], verbs: [get, list, watch, create, patch]}
  - {apiGroups: [apps], resources: [deployments/status], verbs: [patch]}
  - {apiGroups: [""], resources: [configmaps], verbs: [get], resourceNames: [settings]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: apps, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: apps}
subjects:
  - {kind: ServiceAccount, name: bot}  # the binding's namespace
  - {kind: Group, name: ops}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-reader}
rules:
  - {apiGroups: [""], resources: [pods, pods/log], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: pod-reader, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
subjects:
  - {kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: everything}
rules:
  - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: scaler}
rules:
  - {apiGroups: ["*"], resources: ["*/scale"], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: scaler}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: scaler}
subjects:
  - {kind: User, name: alice}
  - {kind: ServiceAccount, name: bot}  # no namespace in a ClusterRoleBinding: nobody
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: root}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: everything}
subjects:
  - {kind: Group, name: admins}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ghost, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ghost}
subjects:
  - {kind: User, name: alice}
"""
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CMS = "/api/v1/namespaces/default/configmaps"


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    done = subprocess.run(
        [tools.require("kubectl"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def as_user(cluster: FakeCluster, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=cluster.url, headers=headers, timeout=10)


@pytest.fixture
def roles(cluster: FakeCluster) -> Iterator[FakeCluster]:
    """The roles above, applied with kubectl as the admin; users bot, alice, ops, root."""
    applied = kubectl(cluster.kubeconfig, "apply", "-f", "-", stdin=ROLES)
    assert "clusterrolebinding.rbac.authorization.k8s.io/root created" in applied
    cluster.add_user("bot-token", BOT)
    cluster.add_user("alice-token", "alice")
    cluster.add_user("ops-token", "olga", groups=["ops"])
    cluster.add_user("root-token", "rooney", groups=["admins"])
    yield cluster


def deployment(name: str = "web", owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "ownerReferences": owners or []},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "img:1"}]},
            },
        },
    }


def owner(cm: dict[str, Any], block: bool = True) -> dict[str, Any]:
    meta = cm["metadata"]
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": meta["name"], "uid": meta["uid"]}
    return {**ref, "controller": True, "blockOwnerDeletion": block}


def test_a_user_token_acts_as_that_user_and_an_unknown_one_is_401(cluster: FakeCluster) -> None:
    cluster.add_user("bot-token", BOT)
    config = yaml.safe_load(
        cluster.kubeconfig_for("bot-token", cluster.kubeconfig.parent / "b").read_text()
    )
    assert config["users"][0]["user"] == {"token": "bot-token"}
    with as_user(cluster, "bot-token") as bot, as_user(cluster, "nope") as stranger:
        refused = bot.get(CMS).json()
        assert refused["code"] == 403
        assert f'User "{BOT}" cannot list resource "configmaps"' in refused["message"]
        assert bot.get("/api").status_code == 200  # discovery is everyone's
        assert bot.get("/version").status_code == 200
        assert bot.get("/openapi/v3").status_code == 200
        assert stranger.get(CMS).status_code == 401
        assert stranger.get("/api").status_code == 401
    assert httpx.get(cluster.url + CMS).status_code == 200  # no token: the admin


def test_roles_grant_by_subject_namespace_subresource_and_name(roles: FakeCluster) -> None:
    cm = roles.create("v1/configmaps", {"metadata": {"name": "settings"}})
    with as_user(roles, "bot-token") as bot:
        assert bot.post(DEPLOYMENTS, json=deployment()).status_code == 201
        assert bot.get(f"{DEPLOYMENTS}/web").status_code == 200
        status = {"status": {"replicas": 0}}
        merge = {"Content-Type": "application/merge-patch+json"}
        assert bot.patch(f"{DEPLOYMENTS}/web/status", json=status, headers=merge).is_success
        assert bot.get(f"{CMS}/settings").json()["metadata"]["uid"] == cm["metadata"]["uid"]
        denied = {
            f"{DEPLOYMENTS}/web/scale": 'cannot get resource "deployments/scale" in API group '
            '"apps" in the namespace "default"',  # the ClusterRoleBinding's SA has no namespace
            CMS: 'cannot list resource "configmaps"',  # resourceNames: only that name
            "/apis/apps/v1/namespaces/kube-system/deployments": 'in the namespace "kube-system"',
            "/apis/apps/v1/deployments": 'in API group "apps" at the cluster scope',
        }
        for path, words in denied.items():
            answer = bot.get(path)
            assert answer.status_code == 403 and words in answer.json()["message"], path
        assert bot.delete(f"{DEPLOYMENTS}/web").status_code == 403
    with as_user(roles, "ops-token") as ops:  # by Group
        assert ops.get(DEPLOYMENTS).status_code == 200
    with as_user(roles, "root-token") as root:  # a ClusterRoleBinding of "*"
        assert root.get("/api/v1/namespaces").status_code == 200
        assert root.delete(f"{DEPLOYMENTS}/web").status_code == 200


def test_a_rolebinding_grants_a_clusterrole_in_its_namespace_only(roles: FakeCluster) -> None:
    with as_user(roles, "alice-token") as alice:
        assert alice.get("/api/v1/namespaces/kube-system/pods").status_code == 200
        assert alice.get("/api/v1/namespaces/kube-system/pods/x/log").status_code == 404
        assert alice.get(f"{DEPLOYMENTS}/web/scale").status_code == 404  # "*/scale": allowed
        refused = alice.get("/api/v1/namespaces/default/pods").json()
    # alice's binding in default names a Role that does not exist: the denial says so
    assert refused["message"] == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
        'namespace "default": RBAC: role.rbac.authorization.k8s.io "ghost" not found'
    )
    assert refused["details"] == {"kind": "pods"}


def test_kubectl_applies_and_reads_rbac_objects(roles: FakeCluster) -> None:
    names = kubectl(roles.kubeconfig, "get", "roles,rolebindings", "-o", "name").split()
    assert names == [
        "role.rbac.authorization.k8s.io/apps",
        "rolebinding.rbac.authorization.k8s.io/apps",
        "rolebinding.rbac.authorization.k8s.io/ghost",
    ]
    assert "configured" in kubectl(
        roles.kubeconfig,
        "apply",
        "-f",
        "-",
        stdin=ROLES.replace("[get, list, watch, create", "[get"),
    )
    [rule, *_] = roles.get("rbac.authorization.k8s.io/v1/roles", "apps")["rules"]
    assert rule["verbs"] == ["get", "patch"]


def test_blocking_an_owners_deletion_needs_update_on_its_finalizers(roles: FakeCluster) -> None:
    settings = roles.create("v1/configmaps", {"metadata": {"name": "settings"}})
    with as_user(roles, "bot-token") as bot:
        refused = bot.post(DEPLOYMENTS, json=deployment(owners=[owner(settings)])).json()
        assert refused == {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": 'deployments.apps "web" is forbidden: cannot set blockOwnerDeletion if an '
            "ownerReference refers to a resource you can't set finalizers on: , <nil>",
            "reason": "Forbidden",
            "details": {"name": "web", "group": "apps", "kind": "deployments"},
            "code": 403,
        }
        # without blockOwnerDeletion a creator may set any owner
        done = bot.post(DEPLOYMENTS, json=deployment(owners=[owner(settings, block=False)]))
        assert done.status_code == 201
        # an update that changes the references needs delete on the object itself
        patch = {"metadata": {"ownerReferences": []}}
        merge = {"Content-Type": "application/merge-patch+json"}
        changed = bot.patch(f"{DEPLOYMENTS}/web", json=patch, headers=merge).json()
        assert changed["message"] == (
            'deployments.apps "web" is forbidden: cannot set an ownerRef on a resource you '
            "can't delete: , <nil>"
        )
        unknown = {**owner(settings), "apiVersion": "example.com/v1", "kind": "Widget"}
        mapped = bot.post(DEPLOYMENTS, json=deployment("w", owners=[unknown])).json()
        assert mapped["message"] == (
            'deployments.apps "w" is forbidden: cannot set blockOwnerDeletion in this case because '
            "cannot find RESTMapping for APIVersion example.com/v1 Kind Widget: "
            'no matches for kind "Widget" in version "example.com/v1"'
        )
    roles.install(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "finalizers", "namespace": "default"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps/finalizers"],
                        "verbs": ["update"],
                        "resourceNames": ["settings"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "finalizers"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "finalizers",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}],
            },
        ]
    )
    with as_user(roles, "bot-token") as bot:
        apply = {"Content-Type": "application/apply-patch+yaml"}
        body = yaml.safe_dump(deployment("applied", owners=[owner(settings)]))
        made = bot.patch(
            f"{DEPLOYMENTS}/applied", params={"fieldManager": "bot"}, content=body, headers=apply
        )
        assert made.status_code == 201, made.text
        # the Deployment controller's pods block the Deployment's deletion: the cluster's write
    pods = roles.select("v1/pods", labels="app=applied")
    assert pods and pods[0]["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
    finalize = ("update", "", "configmaps", "finalizers", "default", "settings")
    assert roles.admission_checks() == [
        Record(BOT, *finalize, 403),
        Record(BOT, "delete", "apps", "deployments", "", "default", "web", 403),
        # an apply that creates is also authorized as a create of that name
        Record(BOT, "create", "apps", "deployments", "", "default", "applied", 200),
        Record(BOT, *finalize, 200),
    ]


def test_the_request_log_names_user_verb_resource_and_code(roles: FakeCluster) -> None:
    mark = len(roles.requests())
    with as_user(roles, "bot-token") as bot:
        bot.get("/apis")
        bot.get(f"{DEPLOYMENTS}/web/status")
        bot.get(DEPLOYMENTS, params={"watch": "true", "timeoutSeconds": "1"})
        bot.post(CMS, json={"metadata": {"name": "x"}})
    roles.create("v1/configmaps", {"metadata": {"name": "direct"}})  # the cluster itself: no entry
    assert roles.requests()[mark:] == [
        Record(BOT, "get", "apps", "deployments", "status", "default", "web", 403),
        Record(BOT, "watch", "apps", "deployments", "", "default", None, 200),
        Record(BOT, "create", "", "configmaps", "", "default", None, 403),
    ]


def test_an_apply_that_creates_needs_create_and_one_that_updates_only_patch(
    cluster: FakeCluster,
) -> None:
    patch_only = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}
    cluster.install(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "patcher", "namespace": "default"},
                "rules": [patch_only],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "patcher", "namespace": "default"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "patcher",
                },
                "subjects": [{"kind": "User", "name": "pat"}],
            },
        ]
    )
    cluster.add_user("pat-token", "pat")
    apply = {"Content-Type": "application/apply-patch+yaml"}
    body = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}})
    with as_user(cluster, "pat-token") as pat:
        refused = pat.patch(
            f"{CMS}/new", params={"fieldManager": "pat"}, content=body, headers=apply
        )
        cluster.create("v1/configmaps", {"metadata": {"name": "new"}})
        allowed = pat.patch(
            f"{CMS}/new", params={"fieldManager": "pat"}, content=body, headers=apply
        )

    assert refused.status_code == 403
    assert 'User "pat" cannot create resource "configmaps"' in refused.json()["message"]
    assert allowed.status_code == 200, allowed.text
