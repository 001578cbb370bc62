"""RBAC = what the code uses: the rules of operator/rbac.yaml and of the rendered chart equal the
(verb, API group, resource[/subresource]) the operator's identity asked for in this session.

Named to run after the other operator tests: every cluster fixture hands the requests its
operator made (and the permissions admission checked for it, e.g. ``realtimeapis/finalizers``
for the children's ``blockOwnerDeletion``) to the session's ``OperatorCalls``. A way of watching
(one namespace, all namespaces) that no earlier test exercised runs a short scenario here, so
the file alone proves something too. The rules live in the YAML files only: when the operator's
calls change, edit operator/rbac.yaml and deploy/helm/cortex/templates/rbac.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cortex.k8s import OperatorSettings
from tests.fakeapi import FakeCluster, wait_for
from tests.fakeapi.access import Record
from tests.operator.activators import serving_activators
from tests.operator.conftest import (
    CLUSTER_WIDE,
    GATEWAY_ROUTING,
    HPAS,
    HTTPROUTES,
    INGRESSES,
    NAMESPACED,
    RAPI,
    ROOT,
    OperatorCalls,
    documents,
    operator_cluster,
    rbac_objects,
    render_chart,
    resource,
    running,
    serve_gateway_api,
    wait_children,
    wait_status,
)

pytestmark = pytest.mark.timeout(120)

Rule = tuple[str, str, str]  # verb, API group, resource[/subresource]


def plain_rbac() -> list[dict[str, Any]]:
    return rbac_objects(documents((ROOT / "operator" / "rbac.yaml").read_text()))


def granted(objects: list[dict[str, Any]]) -> set[Rule]:
    """Every (verb, group, resource) the operator's Role or ClusterRole grants."""
    [role] = [o for o in objects if o["kind"] in ("Role", "ClusterRole")]
    return {
        (verb, group, name)
        for rule in role["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for name in rule["resources"]
    }


def show(record: Record) -> str:
    return record.resource + (f"/{record.subresource}" if record.subresource else "")


def used(records: list[Record]) -> set[Rule]:
    return {(r.verb, r.group, show(r)) for r in records}


def differences(asked: set[Rule], rules: set[Rule]) -> list[str]:
    """What a file's rules miss and what they grant beyond what was asked for."""
    lines = [
        f"  missing: {verb} {group or '(core)'} {name}"
        for verb, group, name in sorted(asked - rules)
    ]
    lines += [
        f"  extra:   {verb} {group or '(core)'} {name}"
        for verb, group, name in sorted(rules - asked)
    ]
    return lines


PDBS = "policy/v1/poddisruptionbudgets"


def scenario(cluster: FakeCluster, namespace: str | None, where: str = "default") -> None:
    """What the operator does for one API: create, status from pods, update, a switch of the
    routing setting to ``gateway`` and back (each deletes the other route), delete; and an API
    with ``min_replicas: 0`` scaled to zero."""
    if where != "default":
        cluster.create("v1/namespaces", {"metadata": {"name": where}})
    serve_gateway_api(cluster, gateway=False)
    with running(namespace=namespace, retry_delay=0.2):
        cluster.create(RAPI, resource("rbac", autoscaling={"min_replicas": 2}), namespace=where)
        wait_children(cluster, "rbac", namespace=where)
        wait_for(lambda: cluster.get(PDBS, "api-rbac", namespace=where), what="the budget")
        cluster.set_pods("api-rbac", "ready", namespace=where)
        wait_status(cluster, "rbac", "live", namespace=where)
        scaling = {"min_replicas": 1, "max_replicas": 7}  # the budget goes
        cluster.patch(RAPI, "rbac", {"spec": {"autoscaling": scaling}}, namespace=where)
        wait_for(
            lambda: (
                cluster.get(HPAS, "api-rbac", namespace=where)["spec"]["maxReplicas"] == 7
                and cluster.get(PDBS, "api-rbac", namespace=where) is None
            ),
            what="the HPA updated and the budget deleted",
        )
    sleepy = resource("sleepy", autoscaling={"min_replicas": 0, "scale_to_zero_after": "1s"})
    zero = OperatorSettings(activator=(where, "cortex-activator"))
    with (
        serving_activators(cluster, where),
        running(namespace=namespace, settings=zero, retry_delay=0.2),
    ):
        cluster.create(RAPI, sleepy, namespace=where)  # scaled to zero once idle for 1 s
        wait_status(cluster, "sleepy", "scaled to zero", namespace=where)
    cluster.delete(RAPI, "sleepy", namespace=where)
    for routing, route, old in (
        (GATEWAY_ROUTING, HTTPROUTES, INGRESSES),
        (None, INGRESSES, HTTPROUTES),
    ):
        with running(namespace=namespace, routing=routing, retry_delay=0.2):
            wait_route(cluster, where, route, old)
    cluster.delete(RAPI, "rbac", namespace=where)


def wait_route(cluster: FakeCluster, where: str, route: str, old: str) -> None:
    wait_for(lambda: cluster.get(route, "api-rbac", namespace=where), what=route)
    wait_for(lambda: cluster.get(old, "api-rbac", namespace=where) is None, what=f"no {old}")


def test_the_operator_watches_all_namespaces_with_the_cluster_role_of_operator_rbac_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operator_calls: OperatorCalls
) -> None:
    with operator_cluster(
        tmp_path, monkeypatch, plain_rbac(), operator_calls, CLUSTER_WIDE
    ) as cluster:
        scenario(cluster, namespace=None, where="ml")
        assert cluster.get(HPAS, "api-rbac", namespace="ml") is None  # collected with its API


def test_rbac_is_exactly_what_the_operator_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operator_calls: OperatorCalls
) -> None:
    chart = {
        NAMESPACED: rbac_objects(render_chart("operator.watchNamespace=default")),
        CLUSTER_WIDE: rbac_objects(render_chart()),
    }
    report = []
    for mode, namespace in ((NAMESPACED, "default"), (CLUSTER_WIDE, None)):
        if not operator_calls.requests.get(mode):
            (tmp_path / mode).mkdir()
            with operator_cluster(
                tmp_path / mode, monkeypatch, chart[mode], operator_calls, mode
            ) as cluster:
                try:
                    scenario(cluster, namespace=namespace)
                except AssertionError as exc:  # e.g. refused: what it asked for says why
                    report.append(f"the {mode} scenario failed: {exc}")
    files = {
        "the chart with operator.watchNamespace=default": (NAMESPACED, chart[NAMESPACED]),
        "the chart watching all namespaces": (CLUSTER_WIDE, chart[CLUSTER_WIDE]),
        "operator/rbac.yaml": (CLUSTER_WIDE, plain_rbac()),
    }
    for name, (mode, objects) in files.items():
        lines = differences(used(operator_calls.requests[mode]), granted(objects))
        if lines:
            report += [f"{name} (vs. {operator_calls.clusters[mode]} {mode} cluster(s)):", *lines]
    refused = {
        f"  {r.verb} {r.group or '(core)'} {show(r)} in {r.namespace or 'the cluster'}"
        for records in operator_calls.requests.values()
        for r in records
        if r.code == 403
    }
    if refused:
        report += ["answered 403 to the operator:", *sorted(refused)]
    if report:
        pytest.fail("RBAC is not what the operator uses:\n" + "\n".join(report), pytrace=False)
