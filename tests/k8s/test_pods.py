"""What a platform team asks of API pods: a disruption budget, spread over nodes, their own
identity, secrets by reference, GPU runtime and shared memory, native preStop sleep, no fixed
UID."""

from __future__ import annotations

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
    assert [item["name"] for item in env[4:]] == ["HOME", "PYTHONDONTWRITEBYTECODE", "TMPDIR"]


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
