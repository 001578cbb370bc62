"""Reading cortex.yaml text and files, resource specs, project files, and the spec hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortex.errors import SpecError
from cortex.spec import load_specs, parse_api_spec, parse_specs, spec_hash

ONE = """\
- name: iris
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
"""


def _error(text: str, base_dir: Path | None = None) -> str:
    with pytest.raises(SpecError) as caught:
        parse_specs(text, base_dir)
    return str(caught.value)


def test_list_of_apis_is_parsed_in_order() -> None:
    text = ONE + ONE.replace("iris", "wine")

    assert [api.name for api in parse_specs(text)] == ["iris", "wine"]


def test_single_mapping_is_a_list_of_one() -> None:
    text = "name: iris\nkind: RealtimeAPI\npredictor: {type: python, path: predictor.py}\n"

    assert parse_specs(text) == parse_specs(ONE)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "[]\n"])
def test_empty_file_defines_no_apis(text: str) -> None:
    assert _error(text).startswith("cortex.yaml: no APIs defined; ")


def test_source_names_the_file_in_messages() -> None:
    with pytest.raises(SpecError, match=r"^apis/cortex\.yaml: no APIs defined; "):
        parse_specs("", source="apis/cortex.yaml")


def test_top_level_scalar_is_rejected() -> None:
    assert _error("3\n").startswith("cortex.yaml: expected a list of APIs, got 3; ")


def test_list_item_must_be_a_mapping() -> None:
    assert _error("- iris\n") == (
        "api #1: must be a mapping of fields (name, kind, predictor, ...), got 'iris'"
    )


def test_yaml_syntax_error_reports_line_and_column() -> None:
    text = """\
- name: iris
  kind: RealtimeAPI
  predictor:
    type: python
   path: predictor.py
"""

    assert _error(text) == (
        "cortex.yaml: line 5, column 4: YAML syntax error: "
        "expected <block end>, but found '<block mapping start>'"
    )


def test_unclosed_bracket_reports_where_the_text_ends() -> None:
    assert _error("- {name: iris\n") == (
        "cortex.yaml: line 2, column 1: YAML syntax error: "
        "expected ',' or '}', but got '<stream end>'"
    )


def test_duplicate_key_in_a_mapping_is_a_yaml_error() -> None:
    text = ONE + "  predictor: {type: python, path: other.py}\n"

    assert (
        _error(text)
        == "cortex.yaml: line 4, column 3: YAML syntax error: duplicate key 'predictor'"
    )


def test_yaml_merge_keys_still_work() -> None:
    text = """\
- &base
  name: iris
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
- <<: *base
  name: wine
"""

    assert [api.endpoint for api in parse_specs(text)] == ["/iris", "/wine"]


def test_duplicate_api_names_are_rejected() -> None:
    text = ONE + ONE.replace("iris", "wine") + ONE

    assert _error(text) == (
        "api 'iris': name 'iris' is used twice (api #1 and api #3); "
        "names must be unique in cortex.yaml"
    )


def test_duplicate_endpoints_are_rejected() -> None:
    text = ONE + ONE.replace("name: iris", "name: wine") + "  networking: {endpoint: /iris}\n"

    assert _error(text) == "api 'wine': networking.endpoint '/iris' is already used by api 'iris'"


def test_duplicate_local_ports_are_rejected() -> None:
    port = "  networking: {local_port: 9000}\n"
    text = ONE + port + ONE.replace("iris", "wine") + port

    assert _error(text) == "api 'wine': networking.local_port 9000 is already used by api 'iris'"


def test_predictor_path_must_exist_under_base_dir(tmp_path: Path) -> None:
    message = _error(ONE, tmp_path)

    expected = tmp_path.resolve() / "predictor.py"
    assert (
        message
        == f"api 'iris': predictor.path 'predictor.py' does not exist (looked for {expected})"
    )


def test_predictor_path_found_under_base_dir(tmp_path: Path) -> None:
    (tmp_path / "predictor.py").write_text("class PythonPredictor: ...\n")

    [api] = parse_specs(ONE, tmp_path)

    assert api.predictor.path == "predictor.py"


def test_predictor_path_may_not_escape_base_dir_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("")
    project = tmp_path / "project"
    project.mkdir()
    (project / "predictor.py").symlink_to(outside)

    message = _error(ONE, project)

    assert message == (
        f"api 'iris': predictor.path 'predictor.py' must be a path inside the project folder "
        f"({project.resolve()})"
    )


def test_python_path_must_be_a_folder_under_base_dir(tmp_path: Path) -> None:
    (tmp_path / "predictor.py").write_text("")
    text = ONE.replace("path: predictor.py", "path: predictor.py, python_path: lib")

    assert _error(text, tmp_path) == (
        f"api 'iris': predictor.python_path 'lib' is not a folder (looked for "
        f"{tmp_path.resolve() / 'lib'})"
    )
    (tmp_path / "lib").mkdir()
    [api] = parse_specs(text, tmp_path)
    assert api.predictor.python_path == "lib"


def test_python_path_is_not_checked_without_base_dir() -> None:
    [api] = parse_specs(ONE.replace("path: predictor.py", "path: predictor.py, python_path: lib"))

    assert api.predictor.python_path == "lib"


def test_load_specs_reads_the_file_and_checks_its_folder(tmp_path: Path) -> None:
    (tmp_path / "cortex.yaml").write_text(ONE)
    (tmp_path / "predictor.py").write_text("")

    assert [api.name for api in load_specs(tmp_path / "cortex.yaml")] == ["iris"]
    assert [api.name for api in load_specs(tmp_path)] == ["iris"]


def test_load_specs_checks_files_relative_to_the_spec_file(tmp_path: Path) -> None:
    (tmp_path / "cortex.yaml").write_text(ONE)

    with pytest.raises(
        SpecError, match=r"^api 'iris': predictor.path 'predictor.py' does not exist"
    ):
        load_specs(tmp_path / "cortex.yaml")


def test_load_specs_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    path = tmp_path / "cortex.yaml"

    with pytest.raises(SpecError) as caught:
        load_specs(path)

    assert str(caught.value) == (
        f"{path}: file not found (looked in {path.resolve()}); "
        "create it or pass the config file's path"
    )


def test_load_specs_names_the_file_in_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "apis.yaml"
    path.write_text("- {name: iris\n")

    with pytest.raises(SpecError, match=rf"^{path}: line 2, column 1: YAML syntax error: "):
        load_specs(path)


def test_load_specs_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cortex.yaml"
    path.write_bytes(b"- name: \xff\n")

    with pytest.raises(SpecError, match="not UTF-8 text"):
        load_specs(path)


def test_resource_spec_takes_its_name_from_metadata() -> None:
    spec = {"predictor": {"type": "python", "path": "predictor.py"}, "project": {"configMap": "p"}}

    api = parse_api_spec("iris", spec)

    assert api.name == "iris"
    assert api.kind == "RealtimeAPI"
    assert api.endpoint == "/iris"
    assert api.project.config_map == "p"


def test_resource_spec_round_trips_through_json() -> None:
    [api] = parse_specs(ONE.replace("path: predictor.py", "path: predictor.py, env: {A: b}"))
    spec = api.model_dump(mode="json", by_alias=True, exclude={"name", "kind"})

    assert parse_api_spec("iris", spec) == api


def test_resource_spec_may_not_carry_a_name() -> None:
    with pytest.raises(SpecError) as caught:
        parse_api_spec("iris", {"name": "x", "predictor": {"type": "python", "path": "p.py"}})

    assert str(caught.value) == (
        "api 'iris': unknown field 'name' in a resource spec "
        "(the name is metadata.name, the kind is the resource's kind)"
    )


def test_resource_spec_errors_name_the_api() -> None:
    with pytest.raises(SpecError) as caught:
        parse_api_spec("iris", {"predictor": {"type": "python", "path": "p.txt"}})

    assert str(caught.value) == "api 'iris': predictor.path 'p.txt' must end with .py"


def test_resource_name_is_validated() -> None:
    with pytest.raises(SpecError, match=r"^api 'Iris': name 'Iris' must be a DNS-1035 label"):
        parse_api_spec("Iris", {"predictor": {"type": "python", "path": "p.py"}})


def test_project_config_map_accepts_snake_case_too() -> None:
    api = parse_api_spec(
        "iris", {"predictor": {"type": "python", "path": "p.py"}, "project": {"config_map": "p"}}
    )

    assert api.project.config_map == "p"


def test_spec_hash_is_stable_under_key_order_and_spelled_out_defaults() -> None:
    reordered = """\
- predictor: {path: predictor.py, type: python, processes_per_replica: 1}
  kind: RealtimeAPI
  autoscaling: {window: 60s, init_replicas: 1}
  name: iris
"""
    [a] = parse_specs(ONE)
    [b] = parse_specs(reordered)

    assert spec_hash(a) == spec_hash(b)
    assert len(spec_hash(a)) == 16


def test_spec_hash_is_stable_under_config_key_order() -> None:
    [a] = parse_specs(ONE.replace("path: predictor.py", "path: predictor.py, config: {x: 1, y: 2}"))
    [b] = parse_specs(ONE.replace("path: predictor.py", "path: predictor.py, config: {y: 2, x: 1}"))

    assert spec_hash(a) == spec_hash(b)


@pytest.mark.parametrize(
    "change",
    [
        "  compute: {gpu: 1}\n",
        "  autoscaling: {max_replicas: 99}\n",
        "  autoscaling: {window: 70s}\n",
        "  networking: {endpoint: /v2/iris}\n",
        "  project: {configMap: other}\n",
    ],
)
def test_spec_hash_changes_with_any_field(change: str) -> None:
    [a] = parse_specs(ONE)
    [b] = parse_specs(ONE + change)

    assert spec_hash(a) != spec_hash(b)


def test_spec_hash_is_the_same_from_a_file_and_from_a_resource() -> None:
    [from_file] = parse_specs(ONE)
    from_resource = parse_api_spec(
        "iris", {"predictor": {"type": "python", "path": "predictor.py"}}
    )

    assert spec_hash(from_file) == spec_hash(from_resource)
