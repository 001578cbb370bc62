"""Operator settings from CORTEX_OPERATOR_* variables and the operator Deployment setting them."""

from __future__ import annotations

import pytest
import yaml

from cortex.errors import CortexError
from cortex.k8s import Autoscaler, OperatorSettings
from cortex.k8s.context import ENV_VARS
from tests.k8s.conftest import OPERATOR_DIR


def test_no_variables_give_the_defaults() -> None:
    settings = OperatorSettings.from_env({"HOME": "/root"})

    assert settings == OperatorSettings()
    assert settings.namespace is None
    assert settings.default_image == "cortex-serving/runtime:0.1.0"
    assert settings.routing == "none"  # the one mode that needs nothing installed
    assert settings.gateway is None
    assert settings.ingress_class is None
    assert settings.autoscaler == Autoscaler.HPA
    assert settings.prometheus_url == "http://prometheus-operated.monitoring.svc:9090"
    assert settings.hpa_tolerance is False


def test_every_variable_sets_its_setting() -> None:
    settings = OperatorSettings.from_env(
        {
            "CORTEX_OPERATOR_NAMESPACE": "ml",
            "CORTEX_OPERATOR_DEFAULT_IMAGE": "example.com/runtime:2",
            "CORTEX_OPERATOR_ROUTING": "gateway",
            "CORTEX_OPERATOR_GATEWAY": "gateway-system/cortex-public",
            "CORTEX_OPERATOR_INGRESS_CLASS": "traefik",
            "CORTEX_OPERATOR_AUTOSCALER": "keda",
            "CORTEX_OPERATOR_PROMETHEUS_URL": "http://prometheus.monitoring:9090/",
            "CORTEX_OPERATOR_HPA_TOLERANCE": "yes",
            "CORTEX_OPERATOR_GPU_NODE_SELECTOR": "nvidia.com/gpu.present=true, pool=gpu",
            "CORTEX_OPERATOR_GPU_TOLERATIONS": '[{"key": "gpu", "operator": "Exists"}]',
            "CORTEX_OPERATOR_PEERING": "cortex",
            "CORTEX_OPERATOR_PEERING_LIFETIME": "15",
        }
    )

    assert settings == OperatorSettings(
        namespace="ml",
        default_image="example.com/runtime:2",
        routing="gateway",
        gateway=("gateway-system", "cortex-public"),
        ingress_class="traefik",
        autoscaler=Autoscaler.KEDA,
        prometheus_url="http://prometheus.monitoring:9090",
        hpa_tolerance=True,
        gpu_node_selector={"nvidia.com/gpu.present": "true", "pool": "gpu"},
        gpu_tolerations=({"key": "gpu", "operator": "Exists"},),
        peering="cortex",
        peering_lifetime=15,
    )


def test_empty_namespace_means_all_namespaces() -> None:
    settings = OperatorSettings.from_env({"CORTEX_OPERATOR_NAMESPACE": ""})

    assert settings.namespace is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CORTEX_OPERATOR_ROUTING": "gateway"},
            "CORTEX_OPERATOR_GATEWAY is not set: CORTEX_OPERATOR_ROUTING 'gateway' needs the "
            "Gateway the routes attach to, as <namespace>/<name>, e.g. gateway-system/cortex",
        ),
        (
            {"CORTEX_OPERATOR_ROUTING": "gateway", "CORTEX_OPERATOR_GATEWAY": ""},
            "CORTEX_OPERATOR_GATEWAY is not set",
        ),
        (
            {"CORTEX_OPERATOR_ROUTING": "ingress", "CORTEX_OPERATOR_INGRESS_CLASS": ""},
            "CORTEX_OPERATOR_INGRESS_CLASS is not set: CORTEX_OPERATOR_ROUTING 'ingress' needs "
            "the class of the Ingresses, e.g. traefik (kubectl get ingressclass lists them)",
        ),
    ],
)
def test_a_routing_mode_without_what_it_needs_is_one_clear_error(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(CortexError) as caught:
        OperatorSettings.from_env(env)

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_each_routing_mode_with_what_it_needs_is_valid() -> None:
    gateway = {"CORTEX_OPERATOR_ROUTING": "gateway", "CORTEX_OPERATOR_GATEWAY": "gw/public"}
    ingress = {"CORTEX_OPERATOR_ROUTING": "ingress", "CORTEX_OPERATOR_INGRESS_CLASS": "nginx"}

    assert OperatorSettings.from_env(gateway).gateway == ("gw", "public")
    assert OperatorSettings.from_env(ingress).ingress_class == "nginx"
    assert OperatorSettings.from_env({"CORTEX_OPERATOR_ROUTING": "none"}).routing == "none"


def test_no_peering_name_means_standalone() -> None:
    assert OperatorSettings.from_env({"CORTEX_OPERATOR_PEERING": ""}).peering is None
    assert OperatorSettings().peering is None


def test_node_selector_may_be_json() -> None:
    settings = OperatorSettings.from_env({"CORTEX_OPERATOR_GPU_NODE_SELECTOR": '{"gpu": "a100"}'})

    assert settings.gpu_node_selector == {"gpu": "a100"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CORTEX_OPERATOR_AUTOSCALER", "maybe", "use one of keda, hpa, cpu"),
        ("CORTEX_OPERATOR_PROMETHEUS_URL", "prometheus:9090", "an http(s) URL"),
        ("CORTEX_OPERATOR_CUSTOM_METRICS", "true", "set that to hpa (what true meant)"),
        ("CORTEX_OPERATOR_DEFAULT_IMAGE", "", "set an image reference"),
        ("CORTEX_OPERATOR_ROUTING", "istio", "use gateway, ingress, none"),
        ("CORTEX_OPERATOR_GATEWAY", "cortex", "use <namespace>/<name> of a Gateway"),
        ("CORTEX_OPERATOR_GATEWAY", "Gateway-System/cortex", "e.g. gateway-system/cortex"),
        ("CORTEX_OPERATOR_GPU_NODE_SELECTOR", "gpu", "use k=v,k2=v2"),
        ("CORTEX_OPERATOR_GPU_NODE_SELECTOR", '{"gpu": 1}', "JSON object of strings"),
        ("CORTEX_OPERATOR_GPU_TOLERATIONS", "[{", "JSON list of tolerations"),
        ("CORTEX_OPERATOR_GPU_TOLERATIONS", '[{"tolerance": 1}]', "keys: key, operator"),
        ("CORTEX_OPERATOR_PEERING", "Cortex HA", "a Kubernetes object name"),
        ("CORTEX_OPERATOR_PEERING", "-cortex", "lowercase a-z, 0-9, -"),
        ("CORTEX_OPERATOR_PEERING_LIFETIME", "0", "at least 1"),
        ("CORTEX_OPERATOR_PEERING_LIFETIME", "1m", "a whole number of seconds"),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(name: str, value: str, message: str) -> None:
    with pytest.raises(CortexError, match=name) as caught:
        OperatorSettings.from_env({name: value})

    assert message in str(caught.value)


def test_operator_deployment_sets_only_known_variables_with_valid_values() -> None:
    deployment = yaml.safe_load((OPERATOR_DIR / "deployment.yaml").read_text())
    [operator] = deployment["spec"]["template"]["spec"]["containers"]

    env = {item["name"]: item["value"] for item in operator["env"]}

    assert set(env) == set(ENV_VARS)
    assert OperatorSettings.from_env(env) == OperatorSettings(
        routing="gateway", gateway=("cortex-system", "cortex")
    )
