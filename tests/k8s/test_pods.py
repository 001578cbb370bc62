"""What a platform team asks of API pods: a disruption budget, spread over nodes, their own
identity, secrets by reference, GPU runtime and shared memory, native preStop sleep, no fixed
UID, locked down (:func:`lockdown_problems`, also applied to the operator's pods)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cortex.errors import CortexError
from cortex.k8s import OperatorSettings, render_pdb
from tests.k8s.conftest import (
    KUBERNETES_VERSIONS,
    by_kind,
    container,
    make_api,
    owner_of,
    render_api,
    validate_k8s,
)

HF_TOKEN = {"secret": "hf-token", "key": "token"}
LOCKED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}


def lockdown_problems(pod: dict[str, Any]) -> list[str]:
    """What keeps a pod spec from the hardening every pod of cortex has: non-root, the runtime's
    default seccomp profile, no privilege escalation, no capabilities, a read-only root with
    only emptyDirs writable, and a writable /tmp for each long-running container."""
    problems = []
    context = pod.get("securityContext", {})
    if context.get("runAsNonRoot") is not True:
        problems.append("pod: runAsNonRoot is not true")
    if context.get("seccompProfile") != {"type": "RuntimeDefault"}:
        problems.append(f"pod: seccompProfile is {context.get('seccompProfile')!r}")
    empty_dirs = {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}
    for kind in ("initContainers", "containers"):
        for each in pod.get(kind, []):
            name, own = each["name"], each.get("securityContext", {})
            problems += [
                f"{name}: {k} is {own.get(k)!r}" for k, v in LOCKED.items() if own.get(k) != v
            ]
            writable = [m for m in each.get("volumeMounts", []) if not m.get("readOnly")]
            problems += [
                f"{name}: {m['mountPath']} is writable but no emptyDir"
                for m in writable
                if m["name"] not in empty_dirs
            ]
            if kind == "containers" and "/tmp" not in [m["mountPath"] for m in writable]:
                problems.append(f"{name}: no writable /tmp")
    return problems


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]
    return spec


def _template_hash(objects: list[dict[str, Any]]) -> str:
    template = by_kind(objects)["Deployment"]["spec"]["template"]
    return str(template["metadata"]["annotations"]["cortex.dev/spec-hash"])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_an_api_keeping_several_replicas_gets_a_budget_of_one_eviction_at_a_time(
    version: str,
) -> None:
    objects = by_kind(render_api(make_api("iris", autoscaling={"min_replicas": 3})))
    budget, deployment = objects["PodDisruptionBudget"], objects["Deployment"]

    assert budget["apiVersion"] == "policy/v1"
    assert budget["metadata"]["name"] == deployment["metadata"]["name"] == "api-iris"
    assert budget["metadata"]["ownerReferences"] == deployment["metadata"]["ownerReferences"]
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": deployment["spec"]["selector"],
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    validate_k8s(budget, version)


def test_an_api_allowed_one_replica_gets_no_budget() -> None:
    api = make_api("iris", autoscaling={"min_replicas": 1, "max_replicas": 5})

    assert "PodDisruptionBudget" not in by_kind(render_api(api))
    assert render_pdb(api, owner_of(api), OperatorSettings()) is None


def test_the_budget_is_no_part_of_the_pod_template() -> None:
    one = render_api(make_api("iris", autoscaling={"min_replicas": 1}))
    two = render_api(make_api("iris", autoscaling={"min_replicas": 2}))

    assert _template_hash(one) == _template_hash(two)
    assert (
        by_kind(one)["Deployment"]["spec"]["template"]
        == (by_kind(two)["Deployment"]["spec"]["template"])
    )


def test_replicas_spread_softly_over_nodes_per_replica_set() -> None:
    deployment = by_kind(render_api(make_api("iris")))["Deployment"]
    [spread] = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]

    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # never leaves a replica pending
    assert spread["maxSkew"] == 1
    assert spread["labelSelector"] == deployment["spec"]["selector"]
    assert spread["matchLabelKeys"] == ["pod-template-hash"]


def test_without_a_service_account_no_token_is_mounted() -> None:
    pod = _pod(render_api(make_api("iris")))

    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod


def test_a_service_account_runs_the_pod_and_its_own_setting_decides_the_token() -> None:
    pod = _pod(render_api(make_api("iris", predictor={"service_account": "s3-reader"})))

    assert pod["serviceAccountName"] == "s3-reader"
    assert "automountServiceAccountToken" not in pod


def test_env_refs_become_value_from_references_sorted_with_the_plain_values() -> None:
    api = make_api(
        "iris",
        predictor={
            "env": {"B_PLAIN": "$(HOME)"},
            "env_refs": {
                "A_TOKEN": HF_TOKEN,
                "C_LABELS": {"config_map": "labels", "key": "labels.json", "optional": True},
            },
        },
    )

    env = container(by_kind(render_api(api))["Deployment"])["env"]

    assert env[1:4] == [
        {"name": "A_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}},
        {"name": "B_PLAIN", "value": "$$(HOME)"},
        {
            "name": "C_LABELS",
            "valueFrom": {
                "configMapKeyRef": {"name": "labels", "key": "labels.json", "optional": True}
            },
        },
    ]
    scratch = ["HOME", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "TMPDIR"]
    assert [item["name"] for item in env[4:]] == scratch


def test_gpu_pods_get_the_runtime_class_and_a_memory_backed_shm() -> None:
    settings = OperatorSettings(gpu_runtime_class="nvidia", gpu_shm_size="4Gi")

    objects = render_api(make_api("llm", compute={"gpu": 1, "mem": "16Gi"}), settings)
    pod = _pod(objects)

    assert pod["runtimeClassName"] == "nvidia"
    assert pod["volumes"][-1] == {
        "name": "shm",
        "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"},
    }
    assert container(by_kind(objects)["Deployment"])["volumeMounts"][-1] == {
        "name": "shm",
        "mountPath": "/dev/shm",
    }


def test_gpu_pods_have_a_1gi_shm_by_default_and_none_when_the_setting_is_empty() -> None:
    api = make_api("llm", compute={"gpu": 1}, project={"configMap": "llm-project"})

    default = _pod(render_api(api))
    without = _pod(render_api(api, OperatorSettings.from_env({"CORTEX_OPERATOR_GPU_SHM_SIZE": ""})))

    assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}} in default[
        "volumes"
    ]
    assert "runtimeClassName" not in default
    assert "shm" not in [volume["name"] for volume in without["volumes"]]


def test_cpu_pods_get_neither_gpu_runtime_class_nor_shm() -> None:
    settings = OperatorSettings(gpu_runtime_class="nvidia", gpu_shm_size="4Gi")

    pod = _pod(render_api(make_api("iris"), settings))

    assert "runtimeClassName" not in pod
    assert "shm" not in [volume["name"] for volume in pod["volumes"]]
    assert "/dev/shm" not in [mount["mountPath"] for mount in pod["containers"][0]["volumeMounts"]]


def test_pre_stop_is_the_native_sleep_action_only_with_the_setting() -> None:
    api = make_api("iris")

    native = container(by_kind(render_api(api, OperatorSettings(sleep_action=True)))["Deployment"])
    plain = container(by_kind(render_api(api))["Deployment"])

    assert native["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert plain["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}


def test_pods_leave_the_uid_to_the_image_or_the_cluster() -> None:
    pod = _pod(render_api(make_api("iris", project={"configMap": "iris-project"})))

    for context in (pod["securityContext"], *(c["securityContext"] for c in pod["containers"])):
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(context)
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_pod_settings_come_from_the_environment() -> None:
    settings = OperatorSettings.from_env(
        {
            "CORTEX_OPERATOR_GPU_RUNTIME_CLASS": "nvidia",
            "CORTEX_OPERATOR_GPU_SHM_SIZE": "512Mi",
            "CORTEX_OPERATOR_SLEEP_ACTION": "true",
        }
    )

    assert (settings.gpu_runtime_class, settings.gpu_shm_size, settings.sleep_action) == (
        "nvidia",
        "512Mi",
        True,
    )


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("CORTEX_OPERATOR_GPU_SHM_SIZE", "lots", "use a memory quantity of at least 1Mi"),
        ("CORTEX_OPERATOR_GPU_SHM_SIZE", "100", "use a memory quantity of at least 1Mi"),
        ("CORTEX_OPERATOR_GPU_RUNTIME_CLASS", "NVIDIA", "use a Kubernetes object name"),
        ("CORTEX_OPERATOR_SLEEP_ACTION", "maybe", "use true or false"),
    ],
)
def test_a_bad_pod_setting_names_the_variable_value_and_fix(
    variable: str, value: str, allowed: str
) -> None:
    with pytest.raises(CortexError) as caught:
        OperatorSettings.from_env({variable: value})

    assert str(caught.value).startswith(f"{variable} {value!r} is not valid: {allowed}")


@pytest.mark.parametrize(
    "sections",
    [
        {},
        {"project": {"configMap": "iris-project"}},
        {"compute": {"gpu": 1}, "project": {"configMap": "iris-project"}},
        {"predictor": {"image": "example.com/me/iris:2", "service_account": "s3-reader"}},
    ],
    ids=["image-default", "configmap-project", "gpu", "own-image-and-account"],
)
def test_every_api_pod_is_locked_down_with_only_emptydirs_writable(
    sections: dict[str, Any],
) -> None:
    assert lockdown_problems(_pod(render_api(make_api("iris", **sections)))) == []


def test_home_and_tmpdir_are_the_pods_emptydirs() -> None:
    pod = _pod(render_api(make_api("iris", project={"configMap": "iris-project"})))
    [api] = pod["containers"]
    env = {item["name"]: item.get("value") for item in api["env"]}
    mounts = {m["mountPath"]: m["name"] for m in api["volumeMounts"]}
    empty_dirs = {volume["name"] for volume in pod["volumes"] if volume.get("emptyDir") == {}}

    assert env["TMPDIR"] == "/tmp" and mounts["/tmp"] in empty_dirs
    assert mounts[env["HOME"]] in empty_dirs
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert (
        env["HOME"] != "/home/cortex"
    )  # the image's own, where `pip install --user` puts packages


def test_the_lockdown_check_names_what_is_missing() -> None:
    pod = copy.deepcopy(_pod(render_api(make_api("iris", project={"configMap": "p"}))))
    pod["securityContext"].pop("seccompProfile")
    pod["initContainers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    pod["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/var"}})
    pod["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": "/var"}]

    assert lockdown_problems(pod) == [
        "pod: seccompProfile is None",
        "project: readOnlyRootFilesystem is False",
        "api: capabilities is {'add': ['NET_ADMIN']}",
        "api: /var is writable but no emptyDir",
        "api: no writable /tmp",
    ]
