"""The chart as a platform team installs it: typed values (values.schema.json), names scoped to
the release, a CRD that `helm upgrade` upgrades, strict lint and valid objects for the default
(all namespaces), GPU, one-namespace and Ingress + HPA values files in ci/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex.k8s import custom_resource_definition
from tests import tools
from tests.deploy.test_packaging import CHART
from tests.k8s.conftest import (
    KUBERNETES_VERSIONS,
    REPO,
    by_kind,
    container,
    make_api,
    render_api,
    validate_k8s,
)
from tests.k8s.test_pod_filesystem import image_env
from tests.k8s.test_pods import lockdown_problems

VALUES_FILES = {
    "default": None,
    "gpu": "ci/gpu-values.yaml",
    "namespaced": "ci/namespaced-values.yaml",
    "ingress-hpa": "ci/ingress-hpa-values.yaml",
}
CUSTOM_KINDS = {"KopfPeering", "ClusterKopfPeering"}  # no built-in schema (their CRDs: crds/)
CRD = "CustomResourceDefinition/realtimeapis.cortex.dev"


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tools.require("helm"), *args], capture_output=True, text=True, check=False
    )


def _values_args(values: str | None, sets: tuple[str, ...]) -> list[str]:
    args = ["-f", str(CHART / values)] if values else []
    for value in sets:
        args += ["--set", value]
    return args


def _render(
    *sets: str, release: str = "cortex", values: str | None = None, upgrade: bool = False
) -> dict[str, dict[str, Any]]:
    args = ["template", release, str(CHART), "--namespace", "cortex-system"]
    args += ["--is-upgrade"] if upgrade else ["--include-crds"]
    done = _helm(*args, *_values_args(values, sets))
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


@pytest.mark.parametrize("values", sorted(VALUES_FILES))
def test_the_chart_lints_strictly(values: str) -> None:
    done = _helm("lint", "--strict", str(CHART), *_values_args(VALUES_FILES[values], ()))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values", sorted(VALUES_FILES))
def test_every_object_rendered_with_each_values_file_is_valid(values: str, version: str) -> None:
    objects = _render(values=VALUES_FILES[values])

    assert CRD in objects
    for obj in objects.values():
        if obj["kind"] not in CUSTOM_KINDS:
            validate_k8s(obj, version)


@pytest.mark.parametrize(
    ("value", "where", "complaint"),
    [
        ("operator.gpuNodeSelector=a100", "/operator/gpuNodeSelector", "got string, want object"),
        ("operator.replicas=two", "/operator/replicas", "got string, want integer"),
        ("operator.sleepAction=maybe", "/operator/sleepAction", "got string, want boolean"),
        ("operator.gpuShmSize=lots", "/operator/gpuShmSize", "does not match pattern"),
        ("operator.logFormat=xml", "/operator/logFormat", "value must be one of"),
        ("operator.gpuTolerations[0].effect=NoSchedul", "/operator/gpuTolerations/0/effect", ""),
        ("operator.gpuNodeSelectr.gpu=a100", "/operator", "'gpuNodeSelectr' not allowed"),
    ],
)
def test_a_wrong_value_fails_against_the_schema_naming_it(
    value: str, where: str, complaint: str
) -> None:
    for command in ("template", "install"):
        args = [command, "cortex", str(CHART), "--set", value]
        done = _helm(*args, *(["--dry-run=client"] if command == "install" else []))

        assert done.returncode != 0, done.stdout
        assert "values don't meet the specifications of the schema" in done.stderr
        assert f"at '{where}'" in done.stderr
        assert complaint in done.stderr


def test_the_values_file_has_no_key_the_schema_does_not_type() -> None:
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def untyped(node: dict[str, Any], props: dict[str, Any], path: str) -> list[str]:
        found = []
        for key, value in node.items():
            if key not in props:
                found.append(f"{path}{key}")
            elif isinstance(value, dict) and "properties" in props[key]:
                found += untyped(value, props[key]["properties"], f"{path}{key}.")
        return found

    assert untyped(values, schema["properties"], "") == []


def _cluster_scoped(objects: dict[str, dict[str, Any]]) -> set[str]:
    kinds = ("ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering")
    return {key for key, obj in objects.items() if obj["kind"] in kinds}


def test_cluster_scoped_objects_are_named_after_the_release() -> None:
    ml = _render("operator.replicas=2", release="ml")
    prod = _render("operator.replicas=2", release="cortex-prod")

    assert _cluster_scoped(ml) == {
        "ClusterRole/ml-cortex-operator",
        "ClusterRoleBinding/ml-cortex-operator",
        "ClusterRole/ml-cortex-user",
        "ClusterRole/ml-cortex-operator-peering",
        "ClusterRoleBinding/ml-cortex-operator-peering",
        "ClusterKopfPeering/ml-cortex",
        "ClusterRole/ml-cortex-activator",
        "ClusterRoleBinding/ml-cortex-activator",
    }
    assert not _cluster_scoped(ml) & _cluster_scoped(prod)
    binding = ml["ClusterRoleBinding/ml-cortex-operator"]
    assert binding["roleRef"]["name"] == "ml-cortex-operator"
    [container] = ml["Deployment/cortex-operator"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["CORTEX_OPERATOR_PEERING"] == "ml-cortex"
    peering_role = ml["ClusterRole/ml-cortex-operator-peering"]
    assert ["ml-cortex"] in [rule.get("resourceNames") for rule in peering_role["rules"]]


def test_the_release_cortex_keeps_the_plain_manifests_names() -> None:
    assert _cluster_scoped(_render()) == {
        "ClusterRole/cortex-operator",
        "ClusterRoleBinding/cortex-operator",
        "ClusterRole/cortex-user",
        "ClusterRole/cortex-activator",
        "ClusterRoleBinding/cortex-activator",
    }


def test_an_upgrade_applies_the_generated_crd_and_uninstall_keeps_it() -> None:
    crd = _render(upgrade=True)[CRD]  # crds/ is never part of an upgrade; templates are
    generated = custom_resource_definition()

    assert crd["spec"] == generated["spec"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    predictor = schema["properties"]["spec"]["properties"]["predictor"]["properties"]
    assert {"env_refs", "service_account"} <= set(predictor)  # the fields of this chart version
    assert not (CHART / "crds" / "realtimeapis.cortex.dev.yaml").exists()


def test_without_crd_install_the_chart_renders_no_crd() -> None:
    assert CRD not in _render("crd.install=false", upgrade=True)


def _fixed_ids(node: Any) -> list[str]:
    """The runAsUser/runAsGroup/fsGroup keys anywhere in a manifest."""
    if isinstance(node, list):
        return [key for item in node for key in _fixed_ids(item)]
    if not isinstance(node, dict):
        return []
    own = [key for key in ("runAsUser", "runAsGroup", "fsGroup") if key in node]
    return own + [key for value in node.values() for key in _fixed_ids(value)]


def test_no_pod_of_the_chart_or_manifests_needs_a_fixed_uid() -> None:
    chart = _render("operator.replicas=2", values=VALUES_FILES["gpu"])
    plain = [d for p in REPO.glob("operator/*.yaml") for d in yaml.safe_load_all(p.read_text())]
    pods = [o for o in [*chart.values(), *plain] if o and o["kind"] == "Deployment"]

    assert pods
    assert [o["metadata"]["name"] for o in pods if _fixed_ids(o)] == []
    for pod in pods:
        assert pod["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize(
    ("values", "sets"),
    [("default", ()), ("gpu", ("operator.replicas=2",)), ("namespaced", ())],
)
def test_every_pod_of_the_chart_and_manifests_is_locked_down(
    values: str, sets: tuple[str, ...]
) -> None:
    chart = _render(*sets, values=VALUES_FILES[values])
    plain = [d for p in REPO.glob("operator/*.yaml") for d in yaml.safe_load_all(p.read_text())]
    pods = {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["spec"]
        for o in [*chart.values(), *plain]
        if o and o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    }

    assert pods
    assert {key: lockdown_problems(pod) for key, pod in pods.items()} == {key: [] for key in pods}


def test_the_image_declares_a_numeric_non_root_user() -> None:
    users = re.findall(r"^USER\s+(\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)

    assert users, "the Dockerfile sets no USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, f"USER {users[-1]}: runAsNonRoot needs a numeric UID"


def test_user_installed_packages_stay_importable_with_the_pods_home() -> None:
    """An image FROM ours that runs `pip install --user` (as its non-root USER must) puts them
    under PYTHONUSERBASE; the pod moves HOME to an emptyDir but leaves that variable alone."""
    deployment = by_kind(render_api(make_api("iris", predictor={"image": "me/iris:2"})))
    pod_env = {e["name"]: e.get("value") for e in container(deployment["Deployment"])["env"]}
    home = re.search(r"--create-home.*? (\w+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)

    assert home is not None
    assert image_env()["PYTHONUSERBASE"] == f"/home/{home.group(1)}/.local"
    assert "PYTHONUSERBASE" not in pod_env
    assert not image_env()["PYTHONUSERBASE"].startswith(pod_env["HOME"])


def test_the_ci_values_files_are_the_ones_tested() -> None:
    shipped = {f"ci/{p.name}" for p in Path(CHART / "ci").glob("*.yaml")}
    assert shipped == {v for v in VALUES_FILES.values() if v}
