"""operator/: how the operator process runs (probes, logs) and the optional peering manifests."""

from __future__ import annotations

import urllib.parse
from typing import Any

import yaml

from cortex.k8s import OperatorSettings
from cortex.operator.__main__ import build_parser
from tests.k8s.conftest import OPERATOR_DIR


def _documents(name: str) -> list[dict[str, Any]]:
    text = (OPERATOR_DIR / name).read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _container() -> dict[str, Any]:
    [deployment] = _documents("deployment.yaml")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _one(name: str, kind: str) -> dict[str, Any]:
    [doc] = [doc for doc in _documents(name) if doc["kind"] == kind]
    return doc


def served_by(obj: dict[str, Any], crds: list[dict[str, Any]]) -> bool:
    """Whether one of ``crds`` serves ``obj``'s kind, in the scope ``obj`` is written for."""
    group, version = obj["apiVersion"].split("/")
    for crd in crds:
        spec = crd["spec"]
        scoped = "namespace" in obj["metadata"]
        if (spec["group"], spec["names"]["kind"]) == (group, obj["kind"]) and any(
            v["name"] == version and v["served"] for v in spec["versions"]
        ):
            return scoped == (spec["scope"] == "Namespaced")
    return False


def test_the_probes_ask_the_health_endpoint_the_operator_serves() -> None:
    operator = _container()
    args = build_parser().parse_args(operator["args"])
    url = urllib.parse.urlsplit(args.liveness)
    [port] = [port for port in operator["ports"] if port["name"] == "health"]

    assert url.hostname == "0.0.0.0"  # the kubelet probes the pod's IP
    assert port == {"name": "health", "containerPort": url.port}
    for probe in ("livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": url.path, "port": "health"}


def test_the_metrics_port_is_where_the_operator_serves_its_metrics() -> None:
    operator = _container()
    url = urllib.parse.urlsplit(build_parser().parse_args(operator["args"]).metrics)
    [port] = [port for port in operator["ports"] if port["name"] == "metrics"]

    assert url.hostname == "0.0.0.0"  # Prometheus scrapes the pod's IP
    assert port == {"name": "metrics", "containerPort": url.port}
    assert url.path == "/metrics"


def test_a_busy_operator_gets_minutes_before_it_is_restarted() -> None:
    liveness = _container()["livenessProbe"]

    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 120
    assert liveness["timeoutSeconds"] >= 10


def test_the_operator_logs_json() -> None:
    assert build_parser().parse_args(_container()["args"]).log_format == "json"


def test_peering_objects_are_of_the_installed_peering_crds() -> None:
    crds = _documents("peering-crds.yaml")
    peering = _one("peering.yaml", "ClusterKopfPeering")

    assert {crd["kind"] for crd in crds} == {"CustomResourceDefinition"}
    assert served_by(peering, crds)
    assert not served_by({**peering, "kind": "KopfPeering"}, crds), "KopfPeering is namespaced"


def test_the_documented_commands_turn_on_peering_through_the_shipped_object() -> None:
    name = _one("peering.yaml", "ClusterKopfPeering")["metadata"]["name"]
    header = (OPERATOR_DIR / "peering.yaml").read_text().split("\napiVersion:")[0]

    assert f"set env deployment/cortex-operator CORTEX_OPERATOR_PEERING={name}" in header
    assert OperatorSettings.from_env({"CORTEX_OPERATOR_PEERING": name}).peering == name


def test_peering_rbac_patches_only_the_peering_object_and_binds_the_operator() -> None:
    name = _one("peering.yaml", "ClusterKopfPeering")["metadata"]["name"]
    role = _one("peering.yaml", "ClusterRole")
    binding = _one("peering.yaml", "ClusterRoleBinding")

    assert role["rules"] == [
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings"],
            "resourceNames": [name],
            "verbs": ["patch"],
        },
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings"],
            "verbs": ["list", "watch"],
        },
    ]
    [deployment] = _documents("deployment.yaml")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    namespace = deployment["metadata"]["namespace"]

    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": namespace}
    ]
