"""The chart's activator: two replicas at least, a budget, its own narrow RBAC, and the operator
told where it is."""

from __future__ import annotations

from cortex.k8s import OperatorSettings
from tests.deploy.test_packaging import operator_env, render

GRANTS = "gateway.networking.k8s.io/v1beta1/ReferenceGrant"


def test_the_activator_runs_two_replicas_or_more_behind_a_budget() -> None:
    objects = render()  # the values' schema refuses activator.replicas below 2

    assert objects["Deployment/cortex-activator"]["spec"]["replicas"] == 2
    assert render("activator.replicas=3")["Deployment/cortex-activator"]["spec"]["replicas"] == 3
    assert objects["PodDisruptionBudget/cortex-activator"]["spec"]["minAvailable"] == 1
    assert objects["Service/cortex-activator"]["spec"]["ports"][0]["port"] == 8888
    container = objects["Deployment/cortex-activator"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "cortex.activator"]


def test_the_operator_is_told_the_activators_service() -> None:
    settings = OperatorSettings.from_env(operator_env(render()))

    assert settings.activator == ("cortex-system", "cortex-activator")
    assert (
        OperatorSettings.from_env(operator_env(render("activator.enabled=false"))).activator is None
    )


def test_the_activator_may_only_read_apis_and_slices_and_write_scales() -> None:
    role = render()["ClusterRole/cortex-activator"]

    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert {v for g, r, v in granted if r.endswith("/scale")} == {"get", "update"}
    assert {r for g, r, v in granted if v in ("update", "patch", "create", "delete")} == {
        "realtimeapis/scale",
        "deployments/scale",
    }


def test_routes_of_the_watched_namespace_may_send_to_the_activator() -> None:
    objects = render("operator.watchNamespace=ml", api_versions=(GRANTS,))

    grant = objects["ReferenceGrant/cortex-activator"]
    assert grant["metadata"]["namespace"] == "cortex-system"
    assert grant["spec"]["from"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "ml"}
    ]
    assert grant["spec"]["to"] == [{"group": "", "kind": "Service", "name": "cortex-activator"}]
