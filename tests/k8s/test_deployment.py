"""The Deployment: resources, GPUs, the runtime container, project code, rollouts, pod security."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from cortex.contracts import joined_spec_env
from cortex.k8s import ANNOTATION_SPEC_HASH, PROJECT_ARCHIVE_KEY, SPEC_ENV, OperatorSettings
from cortex.k8s import render_deployment as _render_deployment
from cortex.spec import RealtimeAPI, parse_api_spec, spec_hash
from tests.k8s.conftest import container, make_api, owner_of

GPU = "nvidia.com/gpu"


def render_deployment(api: RealtimeAPI, settings: OperatorSettings | None = None) -> dict[str, Any]:
    return _render_deployment(api, owner_of(api), settings or OperatorSettings())


def pod_spec(api: RealtimeAPI, settings: OperatorSettings | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = render_deployment(api, settings)["spec"]["template"]["spec"]
    return spec


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(deployment)["env"]}


def test_gpu_limit_equals_request() -> None:
    resources = container(render_deployment(make_api(compute={"gpu": 2})))["resources"]

    assert resources["requests"][GPU] == resources["limits"][GPU] == "2"


def test_gpu_pods_tolerate_the_gpu_taint_and_use_the_settings_node_selector() -> None:
    extra = {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    settings = OperatorSettings(gpu_node_selector={"gpu": "a100"}, gpu_tolerations=(extra,))

    pod = pod_spec(make_api(compute={"gpu": 1}), settings)

    assert pod["tolerations"] == [
        {"key": GPU, "operator": "Exists", "effect": "NoSchedule"},
        extra,
    ]
    assert pod["nodeSelector"] == {"gpu": "a100"}


def test_gpu_pods_without_a_node_selector_setting_have_none() -> None:
    assert "nodeSelector" not in pod_spec(make_api(compute={"gpu": 1}))


def test_no_gpu_fields_without_gpu() -> None:
    settings = OperatorSettings(
        gpu_node_selector={"gpu": "a100"},
        gpu_tolerations=({"key": "gpu", "operator": "Exists"},),
    )

    deployment = render_deployment(make_api(compute={"gpu": 0, "mem": "1Gi"}), settings)

    text = json.dumps(deployment)
    assert GPU not in text
    assert "tolerations" not in text and "nodeSelector" not in text


def test_cpu_and_memory_requests_come_from_compute_with_memory_limited_to_its_request() -> None:
    resources = container(render_deployment(make_api(compute={"cpu": "1.5", "mem": "2Gi"})))[
        "resources"
    ]

    assert resources == {"requests": {"cpu": "1.5", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}


def test_null_cpu_means_no_cpu_request_and_there_is_never_a_cpu_limit() -> None:
    resources = container(render_deployment(make_api(compute={"cpu": None})))["resources"]

    assert resources == {}


def test_default_compute_requests_200m_cpu_only() -> None:
    resources = container(render_deployment(make_api()))["resources"]

    assert resources == {"requests": {"cpu": "200m"}}


def test_image_is_the_predictor_image_or_the_settings_default() -> None:
    custom = make_api(predictor={"image": "example.com/me/api:2"})
    settings = OperatorSettings(default_image="example.com/cortex/runtime:9")

    assert container(render_deployment(custom, settings))["image"] == "example.com/me/api:2"
    assert container(render_deployment(make_api(), settings))["image"] == (
        "example.com/cortex/runtime:9"
    )


def test_container_runs_the_runtime_with_the_spec_from_the_environment() -> None:
    api_container = container(render_deployment(make_api("iris")))

    assert api_container["name"] == "api"
    assert api_container["command"] == [
        "python",
        "-m",
        "cortex.runtime",
        "--spec-env",
        "CORTEX_API_SPEC",
        "--api",
        "iris",
        "--project-dir",
        "/mnt/project",
        "--port",
        "8888",
        "--any-path",
    ]
    assert api_container["ports"] == [{"name": "http", "containerPort": 8888, "protocol": "TCP"}]


def test_spec_env_holds_what_the_pod_runs_and_parses_back() -> None:
    api = make_api(
        predictor={"config": {"threshold": 0.5}, "env": {"A": "1"}, "threads_per_process": 4},
        compute={"cpu": "1", "mem": "1Gi"},
        autoscaling={
            "window": "20s",
            "max_replica_concurrency": 3,
            "target_replica_concurrency": 2,
        },
        project={"configMap": "iris-project"},
        networking={"timeout": "45s", "hostname": "iris.example.com"},
    )

    spec = json.loads(env_of(render_deployment(api))[SPEC_ENV])

    assert set(spec) == {"predictor", "compute", "project", "autoscaling", "networking"}
    assert spec["networking"] == {"timeout": "45s"}  # the runtime's 504; not the route's host
    parsed = parse_api_spec(api.name, spec)
    assert (parsed.predictor, parsed.compute, parsed.project) == (
        api.predictor,
        api.compute,
        api.project,
    )
    assert parsed.autoscaling.max_replica_concurrency == 3
    assert parsed.networking.timeout == 45


@pytest.mark.parametrize(
    "change",
    [
        {"autoscaling": {"max_replicas": 7, "min_replicas": 2, "target_replica_concurrency": 3}},
        {"networking": {"endpoint": "/v2/elsewhere"}},
        {"update_strategy": {"max_surge": 3, "max_unavailable": 1}},
    ],
)
def test_scaling_networking_and_rollout_changes_leave_the_pod_template_alone(
    change: dict[str, Any],
) -> None:
    before = render_deployment(make_api("iris"))
    after = render_deployment(make_api("iris", **change))

    assert after["spec"]["template"] == before["spec"]["template"]


@pytest.mark.parametrize(
    "change",
    [
        {"predictor": {"config": {"threshold": 0.9}}},
        {"predictor": {"env": {"A": "2"}}},
        {"predictor": {"image": "me/api:2"}},
        {"compute": {"cpu": "2"}},
        {"project": {"configMap": "iris-project-2", "sha256": "ab" * 32}},
        {"autoscaling": {"max_replica_concurrency": 9}},
        {"networking": {"timeout": "10s"}},
    ],
)
def test_what_the_pod_runs_changes_the_template_and_its_hash(change: dict[str, Any]) -> None:
    before = render_deployment(make_api("iris"))
    after = render_deployment(make_api("iris", **change))

    old, new = (d["spec"]["template"]["metadata"]["annotations"] for d in (before, after))
    assert old[ANNOTATION_SPEC_HASH] != new[ANNOTATION_SPEC_HASH]


def test_user_env_is_passed_sorted_after_the_spec() -> None:
    deployment = render_deployment(make_api(predictor={"env": {"ZED": "z", "ALPHA": "a"}}))

    names = [item["name"] for item in container(deployment)["env"]]
    assert names == [
        SPEC_ENV,
        "ALPHA",
        "HOME",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONPATH",
        "TMPDIR",
        "ZED",
    ]
    assert env_of(deployment)["ZED"] == "z"


def test_user_env_wins_over_the_scratch_folders_of_the_pod() -> None:
    secret = {"secret": "scratch", "key": "dir"}
    api = make_api(predictor={"env": {"HOME": "/data/home"}, "env_refs": {"TMPDIR": secret}})

    env = container(render_deployment(api))["env"]

    assert [item for item in env if item["name"] in ("HOME", "TMPDIR")] == [
        {"name": "HOME", "value": "/data/home"},
        {"name": "TMPDIR", "valueFrom": {"secretKeyRef": {"name": "scratch", "key": "dir"}}},
    ]


def test_a_user_pythonpath_keeps_the_installed_dependencies_after_it() -> None:
    api = make_api(predictor={"env": {"PYTHONPATH": "/app/src"}})

    assert env_of(render_deployment(api))["PYTHONPATH"] == "/app/src:/mnt/deps"


def test_dollar_signs_reach_the_process_verbatim() -> None:
    api = make_api(predictor={"env": {"PRICE": "$(HOME) costs $5"}, "config": {"t": "$(X)"}})

    env = env_of(render_deployment(api))

    # Kubernetes turns "$$" into "$" and would expand an unescaped "$(HOME)".
    assert env["PRICE"] == "$$(HOME) costs $$5"
    assert json.loads(env[SPEC_ENV].replace("$$", "$"))["predictor"]["config"] == {"t": "$(X)"}


def test_readiness_gates_on_readyz_and_liveness_on_healthz() -> None:
    api_container = container(render_deployment(make_api()))

    readiness = api_container["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/readyz", "port": "http"}
    assert readiness["periodSeconds"] == 5
    assert 1 <= readiness["failureThreshold"] <= 3
    assert api_container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api_container["livenessProbe"]["initialDelaySeconds"] >= 30
    startup = api_container["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_pods_drain_before_they_stop() -> None:
    pod = pod_spec(make_api())

    pre_stop = container(render_deployment(make_api()))["lifecycle"]["preStop"]
    assert pre_stop == {"exec": {"command": ["sleep", "5"]}}
    # preStop sleep + the runtime's 30 s graceful shutdown fit in the grace period.
    assert pod["terminationGracePeriodSeconds"] >= 5 + 30


def test_pods_run_as_non_root_with_no_privileges() -> None:
    pod = pod_spec(make_api(project={"configMap": "iris-project"}))

    # No runAsUser: the image's numeric USER, or the UID the cluster assigns (OpenShift).
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for each in pod["containers"] + pod["initContainers"]:
        assert each["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        }
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), ("50%", "0%"), (0, "10%")])
def test_update_strategy_becomes_the_rolling_update(surge: Any, unavailable: Any) -> None:
    api = make_api(update_strategy={"max_surge": surge, "max_unavailable": unavailable})

    strategy = render_deployment(api)["spec"]["strategy"]

    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }


def test_replicas_start_at_init_replicas() -> None:
    api = make_api(autoscaling={"min_replicas": 2, "max_replicas": 9, "init_replicas": 5})

    assert render_deployment(api)["spec"]["replicas"] == 5
    assert render_deployment(make_api(autoscaling={"min_replicas": 3}))["spec"]["replicas"] == 3


def test_pods_are_annotated_for_prometheus_scraping() -> None:
    annotations = render_deployment(make_api())["spec"]["template"]["metadata"]["annotations"]

    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8888"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_spec_change_changes_pod_template_hash_annotation() -> None:
    def template_hash(api: RealtimeAPI) -> str:
        template = render_deployment(api)["spec"]["template"]
        value: str = template["metadata"]["annotations"][ANNOTATION_SPEC_HASH]
        return value

    before = make_api(predictor={"config": {"model": "a"}})

    assert template_hash(before) == template_hash(make_api(predictor={"config": {"model": "a"}}))
    assert template_hash(before) != template_hash(make_api(predictor={"config": {"model": "b"}}))
    assert template_hash(before) != template_hash(make_api(autoscaling={"max_replicas": 7}))


def test_selector_matches_the_pod_labels() -> None:
    spec = render_deployment(make_api("iris"))["spec"]

    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"] == {"cortex.dev/api-name": "iris"}
    assert spec["selector"]["matchLabels"].items() <= labels.items()


def test_without_a_configmap_the_code_is_expected_in_the_image() -> None:
    pod = pod_spec(make_api(predictor={"image": "example.com/me/api:2"}))

    assert [init["name"] for init in pod["initContainers"]] == ["dependencies"]
    assert [volume["name"] for volume in pod["volumes"]] == ["deps", "tmp", "home"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert "/mnt/project" not in [mount["mountPath"] for mount in mounts]


def test_configmap_project_is_unpacked_and_mounted_read_only() -> None:
    pod = pod_spec(make_api(project={"configMap": "iris-project"}))

    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["project-archive"]["configMap"] == {"name": "iris-project"}
    assert volumes["project"]["emptyDir"] == {}
    assert pod["containers"][0]["volumeMounts"][0] == (
        {"name": "project", "mountPath": "/mnt/project", "readOnly": True}
    )
    [unpack, _] = pod["initContainers"]
    assert unpack["image"] == pod["containers"][0]["image"]
    mounts = {mount["name"]: mount for mount in unpack["volumeMounts"]}
    assert mounts["project-archive"]["readOnly"] is True
    assert f"{mounts['project-archive']['mountPath']}/{PROJECT_ARCHIVE_KEY}" in unpack["command"]


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _run_unpack(command: list[str], tmp_path: Path, files: dict[str, bytes]) -> Path:
    """Runs the init container's command with its mount paths moved under ``tmp_path``."""
    (tmp_path / "mnt" / "project-archive").mkdir(parents=True)
    (tmp_path / "mnt" / "project").mkdir()
    (tmp_path / "mnt" / "project-archive" / PROJECT_ARCHIVE_KEY).write_bytes(_archive(files))
    args = [arg.replace("/mnt/", f"{tmp_path}/mnt/") for arg in command]
    assert args[0] == "python"
    subprocess.run([sys.executable, *args[1:]], check=True, capture_output=True, timeout=60)
    return tmp_path / "mnt" / "project"


def test_project_archive_unpacks_with_its_folders(tmp_path: Path) -> None:
    [unpack, _] = pod_spec(make_api(project={"configMap": "p"}))["initContainers"]
    files = {"predictor.py": b"class PythonPredictor: ...\n", "lib/util.py": b"X = 1\n"}

    project = _run_unpack(unpack["command"], tmp_path, files)

    assert (project / "predictor.py").read_bytes() == files["predictor.py"]
    assert (project / "lib" / "util.py").read_bytes() == files["lib/util.py"]


def test_project_archive_cannot_write_outside_the_project(tmp_path: Path) -> None:
    [unpack, _] = pod_spec(make_api(project={"configMap": "p"}))["initContainers"]

    with pytest.raises(subprocess.CalledProcessError):
        _run_unpack(unpack["command"], tmp_path, {"../escaped.py": b"X = 1\n"})
    assert not (tmp_path / "mnt" / "escaped.py").exists()


def test_a_big_spec_is_spread_over_variables_the_kernel_accepts() -> None:
    config = {"vocabulary": [f"w{i:06d}$" for i in range(300 * 1024 // 9)]}
    api = make_api("big", predictor={"config": config})

    env = container(render_deployment(api))["env"]

    parts = [e for e in env if e["name"].startswith(SPEC_ENV)]
    assert [p["name"] for p in parts][:2] == [SPEC_ENV, f"{SPEC_ENV}_1"]
    assert all(len(f"{p['name']}={p['value']}".encode()) < 128 * 1024 for p in parts)
    values = {p["name"]: p["value"].replace("$$", "$") for p in parts}  # what the pod sees
    spec = json.loads(joined_spec_env(values, SPEC_ENV) or "")
    assert parse_api_spec("big", spec).predictor.config == config


def test_fields_an_api_does_not_use_stay_out_of_its_pods_and_its_hash() -> None:
    """An upgrade that adds a field restarts no pod of an API that does not use it: the pod's
    spec and the hash leave an unused ``predictor.models`` out, and keep a used one."""
    plain = make_api()
    many = make_api(predictor={"models": {"dir": "models"}})

    def runtime_spec(api: RealtimeAPI) -> dict[str, Any]:
        values = env_of(render_deployment(api))
        return json.loads(joined_spec_env(values, SPEC_ENV) or "")

    assert "models" not in runtime_spec(plain)["predictor"]
    assert runtime_spec(many)["predictor"]["models"]["dir"] == "models"
    hashes = {spec_hash(plain), spec_hash(many)}
    assert len(hashes) == 2
