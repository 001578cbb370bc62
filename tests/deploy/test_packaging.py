"""Packaging: the Helm chart (lints, renders valid objects, matches operator/), the Dockerfile."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex.contracts import Metric
from cortex.k8s import Autoscaler, crd_yaml
from cortex.k8s.context import DEFAULT_PROMETHEUS_URL, ENV_VARS, OperatorSettings
from cortex.k8s.hpa import IN_FLIGHT_METRIC
from tests import tools
from tests.k8s.conftest import KUBERNETES_VERSIONS, OPERATOR_DIR, validate_k8s

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "cortex"
ADAPTER_VALUES = CHART.parents[1] / "prometheus-adapter" / "values.yaml"


def helm(*args: str, check: bool = True) -> str:
    result = subprocess.run(
        [tools.require("helm"), *args], capture_output=True, text=True, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
        return result.stdout
    assert result.returncode != 0, "helm succeeded"
    return result.stderr


def render(*sets: str, api_versions: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    args = ["template", "cortex", str(CHART), "--namespace", "cortex-system", "--include-crds"]
    for value in sets:
        args += ["--set", value]
    for api_version in api_versions:
        args += ["--api-versions", api_version]
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
    env = operator_env(
        render(
            "routing.mode=ingress",
            "routing.ingressClass=traefik",
            "operator.gpuNodeSelector.gpu=a100",
        )
    )
    assert set(env) == set(ENV_VARS)
    settings = OperatorSettings.from_env(env)
    assert settings.routing == "ingress"
    assert settings.ingress_class == "traefik"
    assert settings.gpu_node_selector == {"gpu": "a100"}
    assert settings.autoscaler == Autoscaler.HPA  # no KEDA in a plain `helm template`
    assert settings.prometheus_url == DEFAULT_PROMETHEUS_URL
    assert settings.default_image == "cortex-serving/runtime:0.1.0"


def test_the_autoscaler_is_keda_where_the_cluster_serves_keda() -> None:
    objects = render(api_versions=("keda.sh/v1alpha1",))
    settings = OperatorSettings.from_env(operator_env(objects))

    assert settings.autoscaler == Autoscaler.KEDA


def test_the_chart_routes_through_a_gateway_by_default() -> None:
    default = OperatorSettings.from_env(operator_env(render()))
    elsewhere = OperatorSettings.from_env(
        operator_env(render("routing.gateway.namespace=gateway-system"))
    )
    unrouted = OperatorSettings.from_env(operator_env(render("routing.mode=none")))

    assert (default.routing, default.gateway) == ("gateway", ("cortex-system", "cortex"))
    assert elsewhere.gateway == ("gateway-system", "cortex")
    assert (unrouted.routing, unrouted.gateway) == ("none", None)


def test_ingress_routing_without_a_class_fails_to_render_saying_so() -> None:
    args = ["template", "cortex", str(CHART), "--set", "routing.mode=ingress"]
    done = subprocess.run(
        [tools.require("helm"), *args], capture_output=True, text=True, check=False
    )

    assert done.returncode != 0
    assert "routing.ingressClass is required with routing.mode ingress" in done.stderr


@pytest.mark.parametrize("autoscaler", list(Autoscaler))
def test_the_autoscaler_value_wins_over_what_the_cluster_serves(autoscaler: Autoscaler) -> None:
    sets = (f"autoscaling.autoscaler={autoscaler}", "autoscaling.prometheusUrl=http://prom:9090")
    objects = render(*sets, api_versions=("keda.sh/v1alpha1",))
    settings = OperatorSettings.from_env(operator_env(objects))

    assert (settings.autoscaler, settings.prometheus_url) == (autoscaler, "http://prom:9090")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("autoscaling.autoscaler=adapter", "at '/autoscaling/autoscaler': value must be one of"),
        ("customMetrics=false", "customMetrics is replaced by autoscaling.autoscaler"),
    ],
)
def test_a_wrong_autoscaler_value_fails_the_install_naming_it(value: str, message: str) -> None:
    said = helm("template", "cortex", str(CHART), "--set", value, check=False)

    assert message in said


def test_the_adapter_values_add_the_rule_the_hpas_read_to_the_default_rules() -> None:
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    rules = values["rules"]
    [rule] = rules["custom"]

    assert rules["default"] is True  # the chart's own rules stay
    assert "existing" not in rules  # it would replace every rule
    assert rule["name"] == {"matches": f"^{Metric.IN_FLIGHT}$", "as": IN_FLIGHT_METRIC}
    assert rule["seriesQuery"].startswith(f"{Metric.IN_FLIGHT}{{")
    assert rule["metricsQuery"].startswith("sum(avg_over_time(<<.Series>>{<<.LabelMatchers>>}[")
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
    assert "ConfigMap/cortex-prometheus-adapter-rules" not in render()  # nothing to wire up


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docs/images.Dockerfile"])
def test_the_dockerfile_passes_hadolint(dockerfile: str) -> None:
    path = CHART.parents[2] / dockerfile
    hadolint = tools.require("hadolint")
    result = subprocess.run([hadolint, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_images_doc_shows_the_linted_dockerfile_as_it_is() -> None:
    docs = CHART.parents[2] / "docs"
    example = (docs / "images.Dockerfile").read_text()

    assert f"```dockerfile\n{example}```\n" in (docs / "images.md").read_text()


def test_the_user_role_matches_the_plain_manifest() -> None:
    plain = yaml.safe_load((OPERATOR_DIR / "user-role.yaml").read_text())
    assert render()["ClusterRole/cortex-user"]["rules"] == plain["rules"]
    assert "ClusterRole/cortex-user" not in render("userRole=false")
