"""Scraping, dashboards and alerts in the chart: PodMonitor, ServiceMonitor, PrometheusRule, the
Grafana dashboard; every PromQL expression names only metrics something exports."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry

from cortex.operator.metrics import OperatorMetrics, Snapshot
from cortex.runtime import metrics as runtime_metrics
from cortex.runtime import sharedmem
from tests.deploy.monitoring_schemas import DASHBOARD, SCHEMAS
from tests.deploy.test_packaging import CHART, helm, render
from tests.k8s.conftest import (
    KUBERNETES_VERSIONS,
    OPERATOR_DIR,
    by_kind,
    container,
    make_api,
    render_api,
    validate_k8s,
)

CRDS = "monitoring.coreos.com/v1"
MONITOR_KINDS = {"PodMonitor", "ServiceMonitor", "PrometheusRule"}
DASHBOARD_FILE = CHART / "dashboards" / "cortex.json"
# kube-state-metrics' standard series the dashboard and the rules read (replicas, HPA bounds).
KUBE_STATE_METRICS = {
    "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_ready",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_spec_min_replicas",
    "kube_horizontalpodautoscaler_spec_target_metric",
    "kube_horizontalpodautoscaler_status_current_replicas",
}


def with_crds(*sets: str) -> dict[str, dict[str, Any]]:
    return render(*sets, api_versions=(CRDS,))


def kinds(objects: dict[str, dict[str, Any]]) -> set[str]:
    return {obj["kind"] for obj in objects.values()}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


# -- PromQL: the metric names an expression reads --------------------------------------------

_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL (or Grafana ``label_values``) expression: identifiers that
    are not functions, keywords, grouping labels, label matchers, ranges or variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and label_replace arguments
    text = re.sub(r"\$\{\w+\}|\$\w+", "", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = _CLAUSE.sub("", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        after = text[match.end() :].lstrip()
        if not after.startswith("(") and match.group() not in _KEYWORDS:
            names.add(match.group())
    # label_values(metric, label): the label is not a metric
    for inner in re.findall(r"label_values\(([^)]*)\)", text):
        names -= {part.strip() for part in inner.split(",")[1:]}
    return names


def exported(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry exposes (counters with _total, histograms' parts)."""
    names = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{part}" for part in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def runtime_series() -> set[str]:
    shared = sharedmem.ReplicaMemory(1, runtime_metrics.WIDTH, slots=1)
    return exported(runtime_metrics.Metrics("api", shared, 0).registry)


def operator_series() -> set[str]:
    snapshot = Snapshot(apis=1, statuses={("ml", "api"): None})
    return exported(OperatorMetrics(lambda: snapshot).registry)


def dashboard_expressions() -> list[str]:
    board = dashboard()
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    queries = [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs + queries


def rule_expressions(objects: dict[str, dict[str, Any]]) -> list[str]:
    rule = objects["PrometheusRule/cortex"]
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def test_metric_names_skips_functions_labels_ranges_and_variables() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="$v", y=~"b.+"}[$__rate_interval])))'
        ' / on (namespace) group_left() max(label_replace(c, "d", "$1", "e", "(.+)")) > 0.5'
        ' and label_values(f{g="h"}, api_name)'
    )
    assert metric_names(expr) == {"a_bucket", "c", "f"}


# -- the Prometheus Operator's objects ---------------------------------------------------------


def test_without_the_prometheus_operator_crds_no_monitors_or_rules_are_rendered() -> None:
    objects = render()

    assert not kinds(objects) & MONITOR_KINDS
    assert "Service/cortex-operator-metrics" in objects
    assert "ConfigMap/cortex-dashboard" in objects


@pytest.mark.parametrize(
    "objects",
    [pytest.param(with_crds, id="crds-present"), pytest.param(None, id="forced")],
)
def test_with_the_crds_or_forced_the_monitors_and_rule_are_rendered_and_valid(
    objects: Any,
) -> None:
    rendered = objects() if objects else render("monitoring.prometheusOperator.force=true")

    monitors = [obj for obj in rendered.values() if obj["kind"] in MONITOR_KINDS]
    assert {obj["kind"] for obj in monitors} == MONITOR_KINDS
    for obj in monitors:
        jsonschema.validate(obj, SCHEMAS[obj["kind"]])


def test_disabled_nothing_is_rendered_even_with_the_crds() -> None:
    objects = with_crds("monitoring.prometheusOperator.enabled=false")
    assert not kinds(objects) & MONITOR_KINDS


def test_the_schemas_refuse_a_misspelled_field() -> None:
    monitor = with_crds()["PodMonitor/cortex-apis"]
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SCHEMAS["PodMonitor"])


def test_the_pod_monitor_scrapes_every_api_pod_on_its_serving_port() -> None:
    monitor = with_crds()["PodMonitor/cortex-apis"]["spec"]
    deployment = by_kind(render_api(make_api()))["Deployment"]
    pod = deployment["spec"]["template"]
    [expression] = monitor["selector"]["matchExpressions"]
    [endpoint] = monitor["podMetricsEndpoints"]

    assert expression == {"key": "cortex.dev/api-name", "operator": "Exists"}
    assert expression["key"] in pod["metadata"]["labels"]
    assert monitor["namespaceSelector"] == {"any": True}
    assert endpoint["port"] in {port["name"] for port in container(deployment)["ports"]}
    assert endpoint["path"] == "/metrics"
    # plain Prometheus (scraping by annotation) still finds them
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == endpoint["path"]


def test_watching_one_namespace_the_pod_monitor_looks_there_only() -> None:
    monitor = with_crds("operator.watchNamespace=ml")["PodMonitor/cortex-apis"]["spec"]
    assert monitor["namespaceSelector"] == {"matchNames": ["ml"]}


def test_the_service_monitor_scrapes_the_operators_metrics_port() -> None:
    objects = with_crds()
    monitor = objects["ServiceMonitor/cortex-operator"]["spec"]
    service = objects["Service/cortex-operator-metrics"]
    deployment = objects["Deployment/cortex-operator"]
    [operator] = deployment["spec"]["template"]["spec"]["containers"]
    [endpoint] = monitor["endpoints"]
    [port] = service["spec"]["ports"]
    args = operator["args"]

    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["namespaceSelector"] == {"matchNames": ["cortex-system"]}
    assert endpoint["port"] == port["name"] == "metrics"
    assert endpoint["honorLabels"] is True  # the per-API series keep the API's namespace
    assert (
        service["spec"]["selector"].items() <= deployment["spec"]["selector"]["matchLabels"].items()
    )
    [container_port] = [p for p in operator["ports"] if p["name"] == port["targetPort"]]
    assert args[args.index("--metrics") + 1] == (
        f"http://0.0.0.0:{container_port['containerPort']}{endpoint['path']}"
    )


def test_the_plain_manifests_metrics_service_is_the_charts() -> None:
    plain = yaml.safe_load((OPERATOR_DIR / "metrics-service.yaml").read_text())
    chart = render()["Service/cortex-operator-metrics"]
    assert plain["spec"] == chart["spec"]


def test_monitors_carry_the_labels_prometheus_selects_them_by() -> None:
    objects = with_crds("monitoring.prometheusOperator.labels.release=kube-prometheus-stack")
    for obj in objects.values():
        if obj["kind"] in MONITOR_KINDS:
            assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack", obj["kind"]


def test_alert_thresholds_and_durations_come_from_values() -> None:
    objects = with_crds(
        "monitoring.alerts.errorRatio=0.2",
        "monitoring.alerts.p99LatencySeconds=2.5",
        "monitoring.alerts.atMaxReplicasFor=30m",
        "monitoring.alerts.labels.severity=page",
    )
    [group] = objects["PrometheusRule/cortex"]["spec"]["groups"]
    rules = {rule["alert"]: rule for rule in group["rules"]}

    assert set(rules) == {
        "CortexAPIErrorRatioHigh",
        "CortexAPILatencyHigh",
        "CortexAPIAtMaxReplicas",
        "CortexAPINotReady",
    }
    assert rules["CortexAPIErrorRatioHigh"]["expr"].rstrip().endswith("> 0.2")
    assert rules["CortexAPILatencyHigh"]["expr"].rstrip().endswith("> 2.5")
    assert rules["CortexAPIAtMaxReplicas"]["for"] == "30m"
    assert {rule["labels"]["severity"] for rule in rules.values()} == {"page"}
    # Prometheus' own templates reach the rule unrendered by Helm
    assert "{{ $labels.api_name }}" in rules["CortexAPINotReady"]["annotations"]["summary"]


def test_without_alerts_no_rule_is_rendered() -> None:
    assert "PrometheusRule/cortex" not in with_crds("monitoring.alerts.enabled=false")


@pytest.mark.parametrize("sets", [(), ("monitoring.prometheusOperator.force=true",)])
def test_helm_lint_strict_passes(sets: tuple[str, ...]) -> None:
    args = [arg for value in sets for arg in ("--set", value)]
    assert "0 chart(s) failed" in helm("lint", "--strict", str(CHART), *args)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_built_in_object_rendered_with_monitoring_is_valid_kubernetes(version: str) -> None:
    for obj in with_crds().values():
        if obj["kind"] not in MONITOR_KINDS:
            validate_k8s(obj, version)


# -- the Grafana dashboard ---------------------------------------------------------------------


def test_the_dashboard_follows_grafanas_dashboard_model() -> None:
    board = dashboard()
    jsonschema.validate(board, DASHBOARD)
    panels = board["panels"]

    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_no_two_panels_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_panel_and_query_uses_the_datasource_variable() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    chosen = {"type": "prometheus", "uid": "${datasource}"}

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        assert panel["datasource"] == chosen, panel["title"]
        assert all(target["datasource"] == chosen for target in panel["targets"]), panel["title"]
    for name in ("namespace", "api"):
        assert variables[name]["datasource"] == chosen


def test_every_panel_shows_one_api_of_one_namespace() -> None:
    board = dashboard()
    variables = [v["name"] for v in board["templating"]["list"]]
    assert variables == ["datasource", "namespace", "api"]
    for panel in board["panels"]:
        for target in panel["targets"]:
            assert "$namespace" in target["expr"] and "$api" in target["expr"], panel["title"]


def test_the_dashboard_shows_every_runtime_metric() -> None:
    read = {name for expr in dashboard_expressions() for name in metric_names(expr)}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in runtime_series()}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in read}
    assert families - shown == set()


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_expression_names_only_metrics_that_are_exported(source: str) -> None:
    known = runtime_series() | operator_series() | KUBE_STATE_METRICS
    exprs = dashboard_expressions() if source == "dashboard" else rule_expressions(with_crds())
    assert exprs
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= known, f"{names - known} in {expr}"


def test_the_dashboard_ships_as_a_configmap_grafanas_sidecar_loads() -> None:
    objects = render("monitoring.dashboard.annotations.grafana_folder=Cortex")
    config_map = objects["ConfigMap/cortex-dashboard"]

    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Cortex"}
    assert json.loads(config_map["data"]["cortex.json"]) == dashboard()
    assert "ConfigMap/cortex-dashboard" not in render("monitoring.dashboard.enabled=false")


def test_the_dashboard_file_is_in_the_chart(tmp_path: Path) -> None:
    helm("package", str(CHART), "--destination", str(tmp_path))
    [archive] = tmp_path.glob("cortex-*.tgz")
    with tarfile.open(archive) as tar:
        assert "cortex/dashboards/cortex.json" in tar.getnames()
