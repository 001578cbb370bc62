"""Packaging: the Helm chart (lints, renders valid objects, matches operator/), the Dockerfile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex.k8s import crd_yaml
from cortex.k8s.context import ENV_VARS, OperatorSettings
from cortex.k8s.hpa import IN_FLIGHT_METRIC
from tests.k8s.conftest import KUBERNETES_VERSIONS, OPERATOR_DIR, validate_k8s

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "cortex"
HELM = Path(sys.executable).parent / "helm"  # scripts/get_helm.sh puts it in the venv


def helm(*args: str) -> str:
    result = subprocess.run([str(HELM), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(*sets: str) -> dict[str, dict[str, Any]]:
    args = ["template", "cortex", str(CHART), "--namespace", "cortex-system", "--include-crds"]
    for value in sets:
        args += ["--set", value]
    docs = [d for d in yaml.safe_load_all(helm(*args)) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def operator_env(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    [container] = objects["Deployment/cortex-operator"]["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_the_chart_lints() -> None:
    assert "1 chart(s) linted, 0 chart(s) failed" in helm("lint", str(CHART))


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_is_valid_kubernetes(version: str) -> None:
    for obj in render().values():
        validate_k8s(obj, version)


def test_the_chart_crd_is_the_generated_one() -> None:
    committed = (CHART / "files" / "realtimeapis.cortex.dev.yaml").read_text()
    assert committed == crd_yaml(), "run `python scripts/gen_crd.py`"


def test_watching_all_namespaces_the_rbac_is_the_plain_manifests_cluster_role() -> None:
    plain = {d["kind"]: d for d in yaml.safe_load_all((OPERATOR_DIR / "rbac.yaml").read_text())}
    objects = render()
    chart = objects["ClusterRole/cortex-operator"]
    assert chart["rules"] == plain["ClusterRole"]["rules"]
    binding = objects["ClusterRoleBinding/cortex-operator"]
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["subjects"] == plain["ClusterRoleBinding"]["subjects"]
    assert not [key for key in objects if key.startswith(("Role/", "RoleBinding/"))]


def test_watching_one_namespace_the_rbac_is_a_role_there_only() -> None:
    objects = render("operator.watchNamespace=ml")
    role, binding = objects["Role/cortex-operator"], objects["RoleBinding/cortex-operator"]
    cluster_wide = render()["ClusterRole/cortex-operator"]["rules"]

    assert "ClusterRole/cortex-operator" not in objects
    assert "ClusterRoleBinding/cortex-operator" not in objects
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ml"
    assert operator_env(objects)["CORTEX_OPERATOR_NAMESPACE"] == "ml"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "cortex-operator",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cortex-operator", "namespace": "cortex-system"}
    ]
    # the same rules but those of cluster-scoped resources, which a Role cannot grant
    assert all(rule in cluster_wide for rule in role["rules"])
    assert all("customresourcedefinitions" not in rule["resources"] for rule in role["rules"])
    for obj in (role, binding):
        validate_k8s(obj, KUBERNETES_VERSIONS[0])


def test_operator_settings_come_from_values_and_parse() -> None:
    env = operator_env(render("operator.ingressClass=traefik", "operator.gpuNodeSelector.gpu=a100"))
    assert set(env) == set(ENV_VARS)
    settings = OperatorSettings.from_env(env)
    assert settings.ingress_class == "traefik"
    assert settings.gpu_node_selector == {"gpu": "a100"}
    assert settings.custom_metrics is True
    assert settings.default_image == "cortex-serving/runtime:0.1.0"


def test_the_adapter_rule_publishes_the_metric_the_hpas_read() -> None:
    config = yaml.safe_load(
        render()["ConfigMap/cortex-prometheus-adapter-rules"]["data"]["config.yaml"]
    )
    [rule] = config["rules"]
    assert rule["name"]["as"] == IN_FLIGHT_METRIC
    assert "[60s]" in rule["metricsQuery"]
    assert json.dumps(rule).count("cortex_in_flight_requests") >= 2


def test_without_custom_metrics_hpas_use_cpu_and_no_rule_is_rendered() -> None:
    objects = render("customMetrics=false")
    assert "ConfigMap/cortex-prometheus-adapter-rules" not in objects
    assert OperatorSettings.from_env(operator_env(objects)).custom_metrics is False


def test_the_dockerfile_passes_hadolint() -> None:
    dockerfile = CHART.parents[2] / "Dockerfile"
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_user_role_matches_the_plain_manifest() -> None:
    plain = yaml.safe_load((OPERATOR_DIR / "user-role.yaml").read_text())
    assert render()["ClusterRole/cortex-user"]["rules"] == plain["rules"]
    assert "ClusterRole/cortex-user" not in render("userRole=false")
