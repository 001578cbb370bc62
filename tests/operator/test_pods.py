"""The operator and an API's PodDisruptionBudget, over HTTP: created for min_replicas > 1,
deleted when min_replicas drops to 1, and never a reason to replace a pod."""

from __future__ import annotations

import pytest

from tests.fakeapi import FakeCluster, wait_for
from tests.operator.conftest import (
    DEPLOYMENTS,
    RAPI,
    Operator,
    resource,
    wait_children,
    wait_status,
)

pytestmark = pytest.mark.timeout(120)

PDBS = "policy/v1/poddisruptionbudgets"


def _template(cluster: FakeCluster, name: str) -> object:
    return cluster.get(DEPLOYMENTS, f"api-{name}")["spec"]["template"]


def test_the_budget_follows_min_replicas_and_replaces_no_pod(
    cluster: FakeCluster, operator: Operator
) -> None:
    api = cluster.create(RAPI, resource("iris", autoscaling={"min_replicas": 2}))
    deployment = wait_children(cluster, "iris")[DEPLOYMENTS]
    budget = wait_for(lambda: cluster.get(PDBS, "api-iris"), what="the PodDisruptionBudget")

    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    [owner] = budget["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("RealtimeAPI", api["metadata"]["uid"])
    wait_status(cluster, "iris", "updating")
    template = _template(cluster, "iris")

    cluster.patch(RAPI, "iris", {"spec": {"autoscaling": {"min_replicas": 1}}})

    wait_for(lambda: cluster.get(PDBS, "api-iris") is None, what="the budget deleted")
    assert _template(cluster, "iris") == template
    assert cluster.get(DEPLOYMENTS, "api-iris") is not None

    cluster.patch(RAPI, "iris", {"spec": {"autoscaling": {"min_replicas": 3}}})

    wait_for(lambda: cluster.get(PDBS, "api-iris"), what="the budget back")
    assert _template(cluster, "iris") == template


def test_a_budget_of_another_api_is_left_alone(cluster: FakeCluster, operator: Operator) -> None:
    cluster.create(RAPI, resource("two", autoscaling={"min_replicas": 2}))
    cluster.create(RAPI, resource("one"))
    wait_for(lambda: cluster.get(PDBS, "api-two"), what="the budget of two")
    wait_children(cluster, "one")
    wait_status(cluster, "one", "updating")

    assert cluster.get(PDBS, "api-one") is None
    assert cluster.get(PDBS, "api-two") is not None
