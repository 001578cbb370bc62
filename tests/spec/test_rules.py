"""Every validation rule of an API spec, with the exact message a user reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from cortex.errors import SpecError
from cortex.spec import NAME_MAX_LENGTH, NAME_PATTERN, RealtimeAPI, messages, parse_specs


def _api(name: str = "iris", **sections: Any) -> dict[str, Any]:
    api: dict[str, Any] = {"name": name, "kind": "RealtimeAPI"}
    api["predictor"] = {"type": "python", "path": "p.py", **sections.pop("predictor", {})}
    api.update(sections)
    return api


def _parse(**sections: Any) -> RealtimeAPI:
    [api] = parse_specs(yaml.safe_dump([_api(**sections)]))
    return api


def _error(**sections: Any) -> str:
    with pytest.raises(SpecError) as caught:
        _parse(**sections)
    return str(caught.value)


PREDICTOR_RULES = [
    ({"path": "pred.txt"}, "predictor.path 'pred.txt' must end with .py"),
    ({"path": "/abs/p.py"}, "predictor.path '/abs/p.py' must be a path inside the project folder"),
    ({"path": "../p.py"}, "predictor.path '../p.py' must be a path inside the project folder"),
    ({"path": 3}, "predictor.path 3 must be a string"),
    ({"type": "tensorflow"}, "predictor.type 'tensorflow' must be one of: python"),
    (
        {"processes_per_replica": 0},
        "predictor.processes_per_replica 0 must be between 1 and 100",
    ),
    (
        {"processes_per_replica": 101},
        "predictor.processes_per_replica 101 must be between 1 and 100",
    ),
    (
        {"processes_per_replica": "two"},
        "predictor.processes_per_replica 'two' must be an integer between 1 and 100",
    ),
    (
        {"processes_per_replica": True},
        "predictor.processes_per_replica true must be an integer between 1 and 100",
    ),
    ({"threads_per_process": 0}, "predictor.threads_per_process 0 must be between 1 and 30000"),
    (
        {"log_level": "loud"},
        "predictor.log_level 'loud' must be one of: debug, info, warning, error",
    ),
    (
        {"env": {"CORTEX_API": "x"}},
        "predictor.env key 'CORTEX_API' is reserved: names starting with CORTEX_ are set by cortex",
    ),
    (
        {"env": {"1A": "x"}},
        "predictor.env key '1A' is not a valid variable name (letters, digits, '_', '-', '.'; "
        "not starting with a digit)",
    ),
    ({"env": {"A": [1]}}, "predictor.env.A [1] must be a string"),
    ({"config": {1: "a"}}, "predictor.config key 1 must be a string"),
    ({"config": [1]}, "predictor.config [1] must be a mapping"),
    (
        {"server_side_batching": {"max_batch_size": 1, "batch_interval": "10ms"}},
        "predictor.server_side_batching.max_batch_size 1 must be between 2 and 1024",
    ),
    (
        {"server_side_batching": {"max_batch_size": 1025, "batch_interval": "10ms"}},
        "predictor.server_side_batching.max_batch_size 1025 must be between 2 and 1024",
    ),
    (
        {"server_side_batching": {"max_batch_size": 4, "batch_interval": "soon"}},
        "predictor.server_side_batching.batch_interval 'soon' is not a duration "
        "(e.g. 10ms, 2s, 5m)",
    ),
    (
        {"server_side_batching": {"max_batch_size": 4, "batch_interval": "0s"}},
        "predictor.server_side_batching.batch_interval '0s' must be > 0 (e.g. 10ms)",
    ),
    (
        {"server_side_batching": {"max_batch_size": 4}},
        "predictor.server_side_batching.batch_interval is required",
    ),
    (
        {"procs": 2},
        "unknown field 'predictor.procs' (allowed: type, path, config, processes_per_replica, "
        "threads_per_process, server_side_batching, env, env_refs, image, service_account, "
        "python_path, dependencies, models, log_level)",
    ),
    (
        {"env_refs": {"HF_TOKEN": {"key": "token"}}},
        "predictor.env_refs.HF_TOKEN must name exactly one of secret and config_map (and its key)",
    ),
    (
        {"env_refs": {"HF_TOKEN": {"secret": "hf", "config_map": "hf", "key": "token"}}},
        "predictor.env_refs.HF_TOKEN must name exactly one of secret and config_map (and its key)",
    ),
    ({"env_refs": {"HF_TOKEN": {"secret": "hf"}}}, "predictor.env_refs.HF_TOKEN.key is required"),
    (
        {"env_refs": {"HF_TOKEN": "hf/token"}},
        "predictor.env_refs.HF_TOKEN 'hf/token' must be a mapping of fields",
    ),
    (
        {"env_refs": {"T": {"secret": "HF_Token", "key": "t"}}},
        "predictor.env_refs.T.secret 'HF_Token' must be the name of a Secret "
        "(lowercase a-z, 0-9, '-' and '.')",
    ),
    (
        {"env_refs": {"T": {"config_map": "m", "key": "a/b"}}},
        "predictor.env_refs.T.key 'a/b' must be a data key (letters, digits, '-', '_', '.')",
    ),
    (
        {"env_refs": {"T": {"secret": "hf", "key": "t", "optional": "yes"}}},
        "predictor.env_refs.T.optional 'yes' must be true or false",
    ),
    (
        {"env_refs": {"CORTEX_TOKEN": {"secret": "hf", "key": "t"}}},
        "predictor.env_refs key 'CORTEX_TOKEN' is reserved: names starting with CORTEX_ are set "
        "by cortex",
    ),
    (
        {"env": {"T": "x"}, "env_refs": {"T": {"secret": "hf", "key": "t"}}},
        "predictor.env_refs and predictor.env both set 'T'; keep one of them",
    ),
    (
        {"service_account": "ML_Reader"},
        "predictor.service_account 'ML_Reader' must be the name of a ServiceAccount "
        "(lowercase a-z, 0-9, '-' and '.')",
    ),
]


@pytest.mark.parametrize(("predictor", "message"), PREDICTOR_RULES)
def test_predictor_rule_message(predictor: dict[str, Any], message: str) -> None:
    assert _error(predictor=predictor) == f"api 'iris': {message}"


SECTION_RULES = [
    (
        {"compute": {"cpu": "lots"}},
        "compute.cpu 'lots' is not a Kubernetes quantity (e.g. 200m, 1, 2.5)",
    ),
    ({"compute": {"cpu": "10m"}}, "compute.cpu '10m' must be >= 20m"),
    ({"compute": {"cpu": 0.01}}, "compute.cpu '0.01' must be >= 20m"),
    (
        {"compute": {"mem": "lots"}},
        "compute.mem 'lots' is not a Kubernetes quantity (e.g. 512Mi, 2Gi, 1G)",
    ),
    ({"compute": {"mem": "19Mi"}}, "compute.mem '19Mi' must be >= 20Mi"),
    ({"compute": {"gpu": -1}}, "compute.gpu -1 must be between 0 and 2147483647"),
    ({"compute": {"gpu": 1.5}}, "compute.gpu 1.5 must be an integer between 0 and 2147483647"),
    ({"compute": 3}, "compute 3 must be a mapping of fields"),
    (
        {"autoscaling": {"min_replicas": 5, "max_replicas": 3}},
        "autoscaling.min_replicas 5 must be <= autoscaling.max_replicas (3)",
    ),
    (
        {"autoscaling": {"min_replicas": -1}},
        "autoscaling.min_replicas -1 must be between 0 and 2147483647",
    ),
    (
        {"autoscaling": {"min_replicas": 0, "scale_to_zero_after": "500ms"}},
        "autoscaling.scale_to_zero_after '500ms' must be at least 1s (e.g. 30s, 5m)",
    ),
    (
        {"autoscaling": {"min_replicas": 0, "scale_from_zero_timeout": "soon"}},
        "autoscaling.scale_from_zero_timeout 'soon' is not a duration (e.g. 10ms, 2s, 5m)",
    ),
    (
        {"autoscaling": {"min_replicas": 0, "max_queue_length": 0}},
        "autoscaling.max_queue_length 0 must be between 1 and 100000",
    ),
    (
        {"autoscaling": {"min_replicas": 2, "init_replicas": 1}},
        "autoscaling.init_replicas 1 must be between autoscaling.min_replicas (2) and "
        "autoscaling.max_replicas (100)",
    ),
    (
        {"autoscaling": {"init_replicas": 101}},
        "autoscaling.init_replicas 101 must be between autoscaling.min_replicas (1) and "
        "autoscaling.max_replicas (100)",
    ),
    (
        {"autoscaling": {"max_replica_concurrency": 30001}},
        "autoscaling.max_replica_concurrency 30001 must be between 1 and 30000",
    ),
    (
        {"autoscaling": {"target_replica_concurrency": 0}},
        "autoscaling.target_replica_concurrency 0 must be > 0",
    ),
    (
        {"autoscaling": {"target_replica_concurrency": 20, "max_replica_concurrency": 10}},
        "autoscaling.target_replica_concurrency 20 must be <= "
        "autoscaling.max_replica_concurrency (10)",
    ),
    (
        {
            "predictor": {"threads_per_process": 8},
            "autoscaling": {"max_replica_concurrency": 4},
        },
        "autoscaling.target_replica_concurrency 8 (the default, processes_per_replica x "
        "threads_per_process) must be <= autoscaling.max_replica_concurrency (4)",
    ),
    (
        {
            "predictor": {"server_side_batching": {"max_batch_size": 16, "batch_interval": "10ms"}},
            "autoscaling": {"max_replica_concurrency": 8},
        },
        "autoscaling.target_replica_concurrency 16 (the default, processes_per_replica x "
        "max(threads_per_process, max_batch_size)) must be <= "
        "autoscaling.max_replica_concurrency (8)",
    ),
    (
        {"autoscaling": {"window": "5s"}},
        "autoscaling.window '5s' must be at least 10s and a multiple of 10s (e.g. 10s, 60s, 2m)",
    ),
    (
        {"autoscaling": {"window": "15s"}},
        "autoscaling.window '15s' must be at least 10s and a multiple of 10s (e.g. 10s, 60s, 2m)",
    ),
    (
        {"autoscaling": {"downscale_stabilization_period": "-1s"}},
        "autoscaling.downscale_stabilization_period '-1s' is not a duration (e.g. 10ms, 2s, 5m)",
    ),
    (
        {"autoscaling": {"max_downscale_factor": 1}},
        "autoscaling.max_downscale_factor 1 must be >= 0 and < 1",
    ),
    (
        {"autoscaling": {"max_downscale_factor": -0.1}},
        "autoscaling.max_downscale_factor -0.1 must be >= 0 and < 1",
    ),
    ({"autoscaling": {"max_upscale_factor": 1}}, "autoscaling.max_upscale_factor 1 must be > 1"),
    (
        {"autoscaling": {"downscale_tolerance": 1}},
        "autoscaling.downscale_tolerance 1 must be >= 0 and < 1",
    ),
    (
        {"autoscaling": {"upscale_tolerance": "high"}},
        "autoscaling.upscale_tolerance 'high' must be a number >= 0 and < 1",
    ),
    (
        {"update_strategy": {"max_surge": 0, "max_unavailable": "0%"}},
        "update_strategy.max_surge and update_strategy.max_unavailable cannot both be 0 "
        "(a rolling update could never progress); set one of them above 0",
    ),
    (
        {"update_strategy": {"max_surge": -1}},
        "update_strategy.max_surge -1 must be an integer >= 0 or a percentage (e.g. 1, 25%)",
    ),
    (
        {"update_strategy": {"max_unavailable": "150%"}},
        "update_strategy.max_unavailable '150%' must be at most 100%",
    ),
    (
        {"networking": {"endpoint": "iris"}},
        "networking.endpoint 'iris' must start with / and use only letters, digits and . _ ~ / -",
    ),
    (
        {"networking": {"endpoint": "/healthz"}},
        "networking.endpoint '/healthz' is reserved for the runtime's health and metrics",
    ),
    (
        {"networking": {"endpoint": "/" + "a" * 1000}},
        "networking.endpoint '/" + "a" * 56 + "...' must be at most 1000 characters long",
    ),
    ({"networking": {"local_port": 0}}, "networking.local_port 0 must be between 1 and 65535"),
    (
        {"networking": {"local_port": 65536}},
        "networking.local_port 65536 must be between 1 and 65535",
    ),
    ({"project": {"bucket": "b"}}, "unknown field 'project.bucket' (allowed: configMap, sha256)"),
    (
        {"predictr": {}},
        "unknown field 'predictr' (did you mean 'predictor'?)",
    ),
    (
        {"replicas": {}},
        "unknown field 'replicas' (allowed: predictor, compute, autoscaling, update_strategy, "
        "networking, project, name, kind)",
    ),
]


@pytest.mark.parametrize(("sections", "message"), SECTION_RULES)
def test_section_rule_message(sections: dict[str, Any], message: str) -> None:
    assert _error(**sections) == f"api 'iris': {message}"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "Iris",
            "api 'Iris': name 'Iris' must be a DNS-1035 label: lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit",
        ),
        (
            "1ris",
            "api '1ris': name '1ris' must be a DNS-1035 label: lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit",
        ),
        (
            "iris-",
            "api 'iris-': name 'iris-' must be a DNS-1035 label: lowercase letters, digits and "
            "'-', starting with a letter and ending with a letter or digit",
        ),
        (
            "a" * 43,
            f"api '{'a' * 43}': name '{'a' * 43}' must be at most 42 characters long (it has 43)",
        ),
        (5, "api #1: name 5 must be a string"),
    ],
)
def test_name_rule_message(name: object, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_specs(yaml.safe_dump([_api(name=name)]))  # type: ignore[arg-type]

    assert str(caught.value) == message


def test_a_bad_name_is_reported_before_other_errors(tmp_path: Path) -> None:
    text = yaml.safe_dump([_api(name="Iris", predictor={"type": "python", "path": "gone.py"})])

    with pytest.raises(SpecError, match=r"^api 'Iris': name 'Iris' must be a DNS-1035 label"):
        parse_specs(text, tmp_path)


def test_name_of_42_characters_is_accepted() -> None:
    [api] = parse_specs(yaml.safe_dump([_api(name="a" * 41 + "1")]))

    assert api.name == "a" * 41 + "1"


def test_missing_name_names_the_api_by_position() -> None:
    text = yaml.safe_dump([_api(name="a"), {"kind": "RealtimeAPI"}])

    with pytest.raises(SpecError, match=r"^api #2 \(no name\): name is required$"):
        parse_specs(text)


@pytest.mark.parametrize("kind", ["BatchAPI", "AsyncAPI", "TaskAPI", "TrafficSplitter"])
def test_later_kinds_are_not_supported_yet(kind: str) -> None:
    text = yaml.safe_dump([{"name": "iris", "kind": kind}])

    with pytest.raises(SpecError) as caught:
        parse_specs(text)

    assert (
        str(caught.value)
        == f"api 'iris': kind '{kind}' is not supported yet; supported: RealtimeAPI"
    )


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(SpecError) as caught:
        parse_specs("- {name: iris, kind: Foo}")

    assert str(caught.value) == "api 'iris': kind 'Foo' is not a known kind; supported: RealtimeAPI"


def test_missing_kind_is_rejected() -> None:
    with pytest.raises(SpecError) as caught:
        parse_specs("- {name: iris, predictor: {type: python, path: p.py}}")

    assert str(caught.value) == "api 'iris': kind is required (supported: RealtimeAPI)"


def test_missing_predictor_is_required() -> None:
    with pytest.raises(SpecError) as caught:
        parse_specs("- {name: iris, kind: RealtimeAPI}")

    assert str(caught.value) == "api 'iris': predictor is required"


def test_missing_predictor_path_is_required() -> None:
    with pytest.raises(SpecError) as caught:
        parse_specs("- {name: iris, kind: RealtimeAPI, predictor: {type: python}}")

    assert str(caught.value) == "api 'iris': predictor.path is required"


def test_every_error_is_reported_one_per_line_in_field_order() -> None:
    message = _error(predictor={"processes_per_replica": 0}, compute={"gpu": -1})

    assert message.splitlines() == [
        "api 'iris': predictor.processes_per_replica 0 must be between 1 and 100",
        "api 'iris': compute.gpu -1 must be between 0 and 2147483647",
    ]


def test_a_top_level_typo_is_named_before_the_field_it_meant() -> None:
    with pytest.raises(SpecError) as caught:
        parse_specs("- {name: iris, kind: RealtimeAPI, preditor: {type: python, path: p.py}}")

    assert str(caught.value).splitlines() == [
        "api 'iris': unknown field 'preditor' (did you mean 'predictor'?)",
        "api 'iris': predictor is required",
    ]


def test_long_values_are_truncated_in_messages() -> None:
    message = _error(compute={"cpu": "x" * 200})

    assert message == (
        f"api 'iris': compute.cpu '{'x' * 57}...' is not a Kubernetes quantity (e.g. 200m, 1, 2.5)"
    )


def test_env_numbers_and_booleans_become_strings() -> None:
    api = _parse(predictor={"env": {"WORKERS": 4, "DEBUG": True, "RATIO": 0.5}})

    assert api.predictor.env == {"WORKERS": "4", "DEBUG": "true", "RATIO": "0.5"}


def test_update_strategy_accepts_counts_and_percentages() -> None:
    api = _parse(update_strategy={"max_surge": 0, "max_unavailable": "1"})

    assert api.update_strategy.max_surge == 0
    assert api.update_strategy.max_unavailable == 1


def test_custom_endpoint_is_kept() -> None:
    api = _parse(networking={"endpoint": "/v1/iris/predict", "local_port": 9000})

    assert api.endpoint == "/v1/iris/predict"
    assert api.networking.local_port == 9000


@pytest.mark.parametrize(
    ("loc", "message"),
    [
        (("compute", "gpu"), "compute.gpu 'x' is not valid (must be between 0 and 2147483647)"),
        (("predictor", "image"), "predictor.image 'x' is not valid"),
    ],
)
def test_unforeseen_pydantic_errors_still_read_as_one_line(
    loc: tuple[str, ...], message: str
) -> None:
    error = pydantic.ValidationError.from_exception_data(
        "RealtimeAPI", [{"type": "uuid_type", "loc": loc, "input": "x"}]
    )

    assert messages.describe(error, RealtimeAPI) == [message]


@pytest.mark.parametrize("name", ["iris", "a-1", "a", "Iris", "1ris", "iris-", "a_b", "a" * 43])
def test_exported_name_rule_is_the_rule_the_models_apply(name: str) -> None:
    by_rule = re.fullmatch(NAME_PATTERN, name) is not None and len(name) <= NAME_MAX_LENGTH
    try:
        parse_specs(yaml.safe_dump([_api(name=name)]))
    except SpecError:
        accepted = False
    else:
        accepted = True

    assert accepted == by_rule


@pytest.mark.parametrize("endpoint", ["/", "//", "///"])
def test_an_endpoint_that_would_swallow_every_path_is_rejected(endpoint: str) -> None:
    assert _error(networking={"endpoint": endpoint}) == (
        f"api 'iris': networking.endpoint '{endpoint}' would route every request of the gateway "
        "to this API; use a path of its own, such as the default /<api name>"
    )


@pytest.mark.parametrize("endpoint", ["/a/../b", "/./a", "/a/.."])
def test_an_endpoint_with_dot_segments_is_rejected(endpoint: str) -> None:
    assert "must not contain . or .. segments" in _error(networking={"endpoint": endpoint})


def test_hostname_and_timeout_are_checked() -> None:
    bad_host = _error(networking={"hostname": "Bad_Host"})
    short = _error(networking={"timeout": "0.0001"})

    assert "networking.hostname 'Bad_Host' must be a lowercase DNS name" in bad_host
    assert "networking.timeout" in short and "at least 1ms" in short
    assert _parse(networking={"hostname": "*.ml.example.com"}).networking.hostname
