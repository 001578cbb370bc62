"""Every default of an API spec, seen on a minimal cortex.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortex.errors import SpecError
from cortex.spec import Autoscaling, Predictor, RealtimeAPI, parse_specs

MINIMAL = """\
- name: x
  kind: RealtimeAPI
  predictor: {type: python, path: p.py}
"""


def _minimal() -> RealtimeAPI:
    [api] = parse_specs(MINIMAL)
    return api


def test_minimal_spec_is_valid_with_name_kind_and_predictor_only() -> None:
    api = _minimal()

    assert api.name == "x"
    assert api.kind == "RealtimeAPI"
    assert api.predictor.type == "python"
    assert api.predictor.path == "p.py"


def test_predictor_defaults() -> None:
    predictor = _minimal().predictor

    assert predictor.config == {}
    assert predictor.processes_per_replica == 1
    assert predictor.threads_per_process == 1
    assert predictor.server_side_batching is None
    assert predictor.env == {}
    assert predictor.image == ""
    assert predictor.python_path == ""
    assert predictor.log_level == "info"


def test_compute_defaults() -> None:
    compute = _minimal().compute

    assert compute.cpu == "200m"
    assert compute.mem is None
    assert compute.gpu == 0


def test_autoscaling_defaults() -> None:
    scaling = _minimal().autoscaling

    assert scaling.min_replicas == 1
    assert scaling.max_replicas == 100
    assert scaling.max_replica_concurrency == 1024
    assert scaling.window == 60.0
    assert scaling.downscale_stabilization_period == 300.0
    assert scaling.upscale_stabilization_period == 60.0
    assert scaling.max_downscale_factor == 0.75
    assert scaling.max_upscale_factor == 1.5
    assert scaling.downscale_tolerance == 0.05
    assert scaling.upscale_tolerance == 0.05


def test_init_replicas_defaults_to_min_replicas() -> None:
    [api] = parse_specs(MINIMAL + "  autoscaling: {min_replicas: 3}\n")

    assert api.autoscaling.init_replicas == 3


def test_an_api_that_may_scale_to_zero_starts_with_one_replica() -> None:
    [api] = parse_specs(MINIMAL + "  autoscaling: {min_replicas: 0}\n")

    assert api.scales_to_zero
    assert api.autoscaling.init_replicas == 1
    assert api.autoscaling.scale_to_zero_after == 300.0
    assert api.autoscaling.max_queue_length == 100
    assert api.autoscaling.scale_from_zero_timeout == 300.0


def test_init_replicas_zero_starts_an_api_at_zero() -> None:
    [api] = parse_specs(MINIMAL + "  autoscaling: {min_replicas: 0, init_replicas: 0}\n")

    assert api.init_replicas == 0


def test_an_api_with_min_replicas_one_does_not_scale_to_zero() -> None:
    assert not _minimal().scales_to_zero


def test_target_replica_concurrency_defaults_to_processes_times_threads() -> None:
    text = MINIMAL.replace(
        "path: p.py", "path: p.py, processes_per_replica: 2, threads_per_process: 4"
    )

    [api] = parse_specs(text)

    assert api.autoscaling.target_replica_concurrency == 8.0


def test_a_batching_api_targets_at_least_a_full_batch_per_process() -> None:
    batching = "server_side_batching: {max_batch_size: 8, batch_interval: 10ms}"
    small = MINIMAL.replace("path: p.py", f"path: p.py, processes_per_replica: 2, {batching}")
    threads = MINIMAL.replace("path: p.py", f"path: p.py, threads_per_process: 12, {batching}")

    [few_threads] = parse_specs(small)
    [many_threads] = parse_specs(threads)

    assert few_threads.autoscaling.target_replica_concurrency == 16.0  # 2 processes x 8
    assert many_threads.autoscaling.target_replica_concurrency == 12.0  # threads exceed a batch


def test_explicit_init_and_target_are_kept() -> None:
    text = MINIMAL + "  autoscaling: {init_replicas: 2, target_replica_concurrency: 0.5}\n"

    [api] = parse_specs(text)

    assert api.autoscaling.init_replicas == 2
    assert api.autoscaling.target_replica_concurrency == 0.5


def test_filled_in_accessors_read_the_validated_values() -> None:
    text = MINIMAL + "  autoscaling: {init_replicas: 2, target_replica_concurrency: 0.5}\n"

    [api] = parse_specs(text)

    assert (api.init_replicas, api.target_replica_concurrency) == (2, 0.5)


def test_filled_in_accessors_apply_the_defaults_on_an_unfilled_section() -> None:
    predictor = Predictor(type="python", path="p.py", processes_per_replica=3)
    api = RealtimeAPI.model_construct(
        name="x", kind="RealtimeAPI", predictor=predictor, autoscaling=Autoscaling(min_replicas=4)
    )

    assert api.init_replicas == 4
    assert api.target_replica_concurrency == 3.0
    assert isinstance(api.target_replica_concurrency, float)


def test_update_strategy_defaults() -> None:
    strategy = _minimal().update_strategy

    assert strategy.max_surge == "25%"
    assert strategy.max_unavailable == "25%"


def test_endpoint_defaults_to_slash_name() -> None:
    api = _minimal()

    assert api.networking.endpoint == "/x"
    assert api.endpoint == "/x"
    assert api.networking.local_port is None


def test_project_defaults_to_no_config_map() -> None:
    assert _minimal().project.config_map is None


def test_null_sections_mean_defaults() -> None:
    text = MINIMAL + "  compute:\n  autoscaling:\n  networking: null\n"

    [api] = parse_specs(text)

    assert api == _minimal()


def test_fully_defaulted_api_dumps_to_canonical_json() -> None:
    assert _minimal().model_dump(mode="json", by_alias=True) == {
        "name": "x",
        "kind": "RealtimeAPI",
        "predictor": {
            "type": "python",
            "path": "p.py",
            "config": {},
            "processes_per_replica": 1,
            "threads_per_process": 1,
            "server_side_batching": None,
            "env": {},
            "env_refs": {},
            "image": "",
            "service_account": None,
            "python_path": "",
            "dependencies": {"pip": "requirements.txt", "shell": "dependencies.sh"},
            "models": None,
            "log_level": "info",
        },
        "compute": {"cpu": "200m", "mem": None, "gpu": 0},
        "autoscaling": {
            "min_replicas": 1,
            "max_replicas": 100,
            "init_replicas": 1,
            "max_replica_concurrency": 1024,
            "target_replica_concurrency": 1.0,
            "window": "1m",
            "downscale_stabilization_period": "5m",
            "upscale_stabilization_period": "1m",
            "max_downscale_factor": 0.75,
            "max_upscale_factor": 1.5,
            "downscale_tolerance": 0.05,
            "upscale_tolerance": 0.05,
            "scale_to_zero_after": "5m",
            "max_queue_length": 100,
            "scale_from_zero_timeout": "5m",
        },
        "update_strategy": {"max_surge": "25%", "max_unavailable": "25%"},
        "networking": {
            "endpoint": "/x",
            "hostname": None,
            "timeout": "5m",
            "local_port": None,
            "auth": None,
        },
        "project": {"configMap": None, "sha256": None},
    }


def test_a_missing_default_dependency_file_is_fine_an_empty_name_is_none_a_named_one_must_exist(
    tmp_path: Path,
) -> None:
    (tmp_path / "p.py").write_text("")
    named = MINIMAL.replace("p.py}", "p.py, dependencies: {pip: deps/requirements.txt}}")

    off = MINIMAL.replace("p.py}", "p.py, dependencies: {pip: '', shell: ''}}")

    [api] = parse_specs(MINIMAL, base_dir=tmp_path)
    [without] = parse_specs(off, base_dir=tmp_path)
    with pytest.raises(SpecError) as caught:
        parse_specs(named, base_dir=tmp_path)

    assert api.predictor.dependencies.pip == "requirements.txt"
    assert without.predictor.dependencies.model_dump() == {"pip": "", "shell": ""}
    assert "predictor.dependencies.pip 'deps/requirements.txt' does not exist" in str(caught.value)
