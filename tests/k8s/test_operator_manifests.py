"""operator/: install manifests only, valid for Kubernetes 1.29 and 1.37, least-privilege RBAC.

Whether the RBAC is exactly what the operator uses is tests/operator/test_zz_rbac.py's question
(it watches the operator's requests); these are the rules' static properties."""

from __future__ import annotations

import dataclasses
import subprocess
from typing import Any

import pytest
import yaml

from cortex.k8s import AUTOSCALER_KINDS, Autoscaler
from tests import tools
from tests.k8s.conftest import (
    KUBERNETES_VERSIONS,
    OPERATOR_DIR,
    ROUTINGS,
    make_api,
    render_api,
    validate_k8s,
)

MANIFESTS = sorted(
    path.name for path in OPERATOR_DIR.glob("*.yaml") if path.name != "kustomization.yaml"
)
OPTIONAL = ("peering.yaml",)  # applied on top of the install (tests/k8s/test_peering_manifests.py)
# What each rendered kind is called in RBAC rules: (apiGroup, resource).
RESOURCES = {
    "Deployment": ("apps", "deployments"),
    "Service": ("", "services"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "HTTPRoute": ("gateway.networking.k8s.io", "httproutes"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "ScaledObject": ("keda.sh", "scaledobjects"),
}


def _documents(name: str) -> list[dict[str, Any]]:
    text = (OPERATOR_DIR / name).read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _cluster_role() -> dict[str, Any]:
    [role] = [doc for doc in _documents("rbac.yaml") if doc["kind"] == "ClusterRole"]
    return role


def _verbs(group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in _cluster_role()["rules"]:
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def test_operator_folder_holds_yaml_only() -> None:
    names = {path.name for path in OPERATOR_DIR.iterdir()}

    assert names == {
        "crd.yaml",
        "deployment.yaml",
        "kustomization.yaml",
        "metrics-service.yaml",
        "namespace.yaml",
        "peering-crds.yaml",
        "peering.yaml",
        "rbac.yaml",
        "user-role.yaml",
    }
    assert not (OPERATOR_DIR / "__init__.py").exists()


def test_kustomization_lists_every_manifest() -> None:
    [kustomization] = _documents("kustomization.yaml")

    assert sorted(kustomization["resources"]) == [m for m in MANIFESTS if m not in OPTIONAL]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_passes_kubernetes_validate_strict(name: str, version: str) -> None:
    for doc in _documents(name):
        if not doc["apiVersion"].startswith("kopf.dev/"):  # custom: checked against its CRD
            validate_k8s(doc, version)


def test_kubectl_kustomize_builds_the_install() -> None:
    kubectl = tools.require("kubectl")
    done = subprocess.run(
        [kubectl, "kustomize", str(OPERATOR_DIR)], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert sorted(doc["kind"] for doc in docs) == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
        "Namespace",
        "Service",
        "ServiceAccount",
    ]
    for doc in docs:
        validate_k8s(doc, KUBERNETES_VERSIONS[0])


@pytest.mark.parametrize("autoscaler", list(Autoscaler))
@pytest.mark.parametrize("routing", sorted(ROUTINGS))
def test_rbac_lets_the_operator_write_every_rendered_kind(
    routing: str, autoscaler: Autoscaler
) -> None:
    settings = dataclasses.replace(ROUTINGS[routing], autoscaler=autoscaler)

    for obj in render_api(make_api(), settings):
        group, resource = RESOURCES[obj["kind"]]
        assert "patch" in _verbs(group, resource), obj["kind"]


def test_rbac_lets_the_operator_delete_an_autoscaler_of_the_other_kind() -> None:
    for kind in AUTOSCALER_KINDS:
        assert "delete" in _verbs(kind.group, kind.plural), kind.kind


def test_rbac_lets_the_children_block_the_deletion_of_their_api() -> None:
    # every child's ownerReference has blockOwnerDeletion: with the
    # OwnerReferencesPermissionEnforcement admission plugin, creating one needs this
    assert _verbs("cortex.dev", "realtimeapis/finalizers") == {"update"}


# What the operator deletes: an API's route or autoscaler of a kind the settings no longer
# render (or a route an older API's claims), and the budget of an API whose min_replicas dropped
# to 1.
PRUNED = {"ingresses", "httproutes", "poddisruptionbudgets"} | {
    kind.plural for kind in AUTOSCALER_KINDS
}


def test_rbac_has_no_wildcards_secrets_escalation_or_deletes_but_of_what_is_pruned() -> None:
    for rule in _cluster_role()["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key]
        assert "secrets" not in rule["resources"]
        assert not {"deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
        if "delete" in rule["verbs"]:
            assert set(rule["resources"]) <= PRUNED, rule
        if "update" in rule["verbs"]:  # finalizers, and the scale to zero of an idle API
            assert all(name.endswith(("/finalizers", "/scale")) for name in rule["resources"])


def test_operator_runs_as_the_bound_service_account_without_root() -> None:
    [deployment] = _documents("deployment.yaml")
    [binding] = [doc for doc in _documents("rbac.yaml") if doc["kind"] == "ClusterRoleBinding"]
    pod = deployment["spec"]["template"]["spec"]
    [operator] = pod["containers"]

    assert operator["command"] == ["python", "-m", "cortex.operator"]
    assert operator["image"] == "cortex-serving/runtime:0.1.0"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "cortex-system"}
    ]
    assert deployment["metadata"]["namespace"] == "cortex-system"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert operator["securityContext"]["allowPrivilegeEscalation"] is False
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
