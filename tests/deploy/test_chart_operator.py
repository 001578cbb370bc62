"""The chart's operator process: one standalone replica by default, peering replicas as an option,
probes and log format as in operator/deployment.yaml."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from cortex.k8s import OperatorSettings
from tests.deploy.test_packaging import CHART, operator_env, render
from tests.k8s.conftest import KUBERNETES_VERSIONS, OPERATOR_DIR, validate_k8s
from tests.k8s.test_operator_process_manifests import served_by

PEERING_CRDS = list(yaml.safe_load_all((OPERATOR_DIR / "peering-crds.yaml").read_text()))
PEERING_KINDS = {"KopfPeering", "ClusterKopfPeering"}


def _deployment(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return objects["Deployment/cortex-operator"]


def _container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [container] = _deployment(objects)["spec"]["template"]["spec"]["containers"]
    return container


def _plain_container() -> dict[str, Any]:
    deployment = yaml.safe_load((OPERATOR_DIR / "deployment.yaml").read_text())
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _peering_objects(objects: dict[str, dict[str, Any]]) -> list[str]:
    """The objects only peering replicas need (not the CRDs, installed always)."""
    only_for_peering = PEERING_KINDS | {"PodDisruptionBudget"}
    return [
        key
        for key, obj in objects.items()
        if (obj["kind"] in only_for_peering and not key.endswith("/cortex-activator"))
        or key.endswith("/cortex-operator-peering")
    ]


def test_by_default_one_standalone_replica_is_replaced_with_recreate() -> None:
    objects = render()
    spec = _deployment(objects)["spec"]

    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert "affinity" not in spec["template"]["spec"]
    assert OperatorSettings.from_env(operator_env(objects)).peering is None
    assert _peering_objects(objects) == []


def test_two_replicas_peer_cluster_wide_and_roll_one_at_a_time() -> None:
    objects = render("operator.replicas=2")
    spec = _deployment(objects)["spec"]
    settings = OperatorSettings.from_env(operator_env(objects))
    plain = yaml.safe_load_all((OPERATOR_DIR / "peering.yaml").read_text())
    [plain_role] = [doc for doc in plain if doc["kind"] == "ClusterRole"]

    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert spec["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert (settings.peering, settings.peering_lifetime) == ("cortex", 60)
    assert served_by(objects["ClusterKopfPeering/cortex"], PEERING_CRDS)
    assert objects["ClusterRole/cortex-operator-peering"]["rules"] == plain_role["rules"]
    [subject] = objects["ClusterRoleBinding/cortex-operator-peering"]["subjects"]
    assert subject["namespace"] == "cortex-system"
    assert objects["PodDisruptionBudget/cortex-operator"]["spec"]["maxUnavailable"] == 1


def test_replicas_watching_one_namespace_peer_in_that_namespace() -> None:
    objects = render("operator.replicas=2", "operator.watchNamespace=ml")
    peering = objects["KopfPeering/cortex"]
    role = objects["Role/cortex-operator-peering"]

    assert peering["metadata"]["namespace"] == "ml"
    assert served_by(peering, PEERING_CRDS)
    assert role["metadata"]["namespace"] == "ml"
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"kopfpeerings"}
    assert objects["RoleBinding/cortex-operator-peering"]["metadata"]["namespace"] == "ml"
    assert "ClusterRole/cortex-operator-peering" not in objects
    assert "ClusterKopfPeering/cortex" not in objects


def test_the_peering_name_and_lifetime_come_from_values() -> None:
    objects = render(
        "operator.replicas=3", "operator.peering.name=ha", "operator.peering.lifetime=15"
    )
    settings = OperatorSettings.from_env(operator_env(objects))

    assert (settings.peering, settings.peering_lifetime) == ("ha", 15)
    assert "ClusterKopfPeering/ha" in objects
    [patch] = [
        r for r in objects["ClusterRole/cortex-operator-peering"]["rules"] if "patch" in r["verbs"]
    ]
    assert patch["resourceNames"] == ["ha"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("namespace", ["", "ml"])
def test_every_object_rendered_with_peering_is_valid_kubernetes(
    version: str, namespace: str
) -> None:
    objects = render("operator.replicas=2", f"operator.watchNamespace={namespace}")
    for obj in objects.values():
        if obj["kind"] not in PEERING_KINDS:
            validate_k8s(obj, version)


def test_probes_ports_and_log_format_are_those_of_the_plain_manifest() -> None:
    chart, plain = _container(render()), _plain_container()

    for key in ("args", "ports", "livenessProbe", "readinessProbe"):
        assert chart[key] == plain[key], key
    assert _container(render("operator.logFormat=plain"))["args"][:2] == ["--log-format", "plain"]


def test_the_chart_installs_the_plain_peering_crds() -> None:
    chart = (CHART / "crds" / "kopf-peerings.yaml").read_text()
    assert chart == (OPERATOR_DIR / "peering-crds.yaml").read_text()
    assert {"CustomResourceDefinition/kopfpeerings.kopf.dev"} <= set(render())
