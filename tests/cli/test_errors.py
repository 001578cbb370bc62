"""Bad input: each is one clear ``error: ...`` line on stderr, exit code 1, never a traceback."""

from __future__ import annotations

import socket
import subprocess

import pytest
import yaml

from tests.cli.conftest import CLI, api, table_rows


def assert_one_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The first stderr line is ``error: ...`` holding ``fragments``; no CLI traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in first, first
    assert "Traceback" not in result.stderr.split("last log lines")[0]
    assert "cortex/cli" not in result.stderr
    return first


def test_missing_config_file(cli: CLI) -> None:
    assert_one_error(cli("deploy"), "cortex.yaml: file not found")
    assert_one_error(cli("deploy", "other.yaml"), "other.yaml: file not found")


def test_yaml_syntax_error_names_the_line(cli: CLI) -> None:
    (cli.project / "cortex.yaml").write_text(
        "- name: a\n  kind: RealtimeAPI\n  predictor: {type: python\n  path: p.py\n"
    )
    assert_one_error(cli("deploy"), "cortex.yaml: line 4", "YAML syntax error")


def test_invalid_field_names_the_api_the_field_and_the_rule(cli: CLI) -> None:
    spec = api("bad")
    spec["predictor"]["processes_per_replica"] = 0
    cli.write(spec)
    assert_one_error(
        cli("deploy"), "api 'bad': predictor.processes_per_replica 0 must be between 1 and 100"
    )


def test_a_top_level_typo_is_named_with_the_field_it_meant(cli: CLI) -> None:
    spec = api("typo")
    spec["preditor"] = spec.pop("predictor")
    (cli.project / "cortex.yaml").write_text(yaml.safe_dump([spec]))
    assert_one_error(
        cli("deploy"), "api 'typo': unknown field 'preditor' (did you mean 'predictor'?)"
    )


def test_every_spec_error_is_shown_one_per_line(cli: CLI) -> None:
    spec = api("bad")
    spec["predictor"]["processes_per_replica"] = 0
    spec["compute"] = {"gpu": -1}
    spec["networking"] = {"local_port": 70000}
    cli.write(spec)
    result = cli("deploy")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: api 'bad': predictor.processes_per_replica 0 must be between 1 and 100",
        "error: api 'bad': compute.gpu -1 must be between 0 and 2147483647",
        "error: api 'bad': networking.local_port 70000 must be between 1 and 65535",
    ]


def test_port_in_use_by_another_program(cli: CLI) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        cli.write(api("taken", port=port))
        assert_one_error(
            cli("deploy"),
            f"api 'taken': networking.local_port {port} is already in use by another program",
        )
    assert not (cli.home / "local" / "taken").exists()


@pytest.mark.slow
def test_init_failure_reports_the_error_and_the_log_tail(cli: CLI) -> None:
    cli.write(api("broken", "init_fails.py"))
    result = cli("deploy")
    assert_one_error(
        result,
        "api 'broken' failed to start: predictor __init__ raised RuntimeError: "
        "model file weights.bin is missing",
    )
    assert "last log lines of broken:" in result.stderr
    assert "RuntimeError: model file weights.bin is missing" in result.stderr.split("last log")[1]
    assert "creating broken (RealtimeAPI)" in result.stdout

    row = table_rows(cli.ok("get"))["broken"]
    assert (row["status"], row["up-to-date"]) == ("error", "0")
    details = cli.ok("get", "broken")
    assert "error: the process is not running: predictor __init__ raised RuntimeError" in details
    cli.ok("delete", "broken", "-y")


@pytest.mark.parametrize(
    "args",
    [
        ("get", "nope"),
        ("logs", "nope"),
        ("predict", "nope", "-d", "{}"),
        ("delete", "nope", "-y"),
    ],
)
def test_unknown_api(cli: CLI, args: tuple[str, ...]) -> None:
    assert_one_error(
        cli(*args), "api 'nope' is not deployed in environment 'local' (none deployed yet)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("predict", "x"), "no payload"),
        (("predict", "x", "-d", "{bad"), "-d is not valid JSON"),
        (("predict", "x", "p.json", "-d", "{}"), "either FILE or -d"),
        (("predict", "x", "missing.json"), "missing.json: file not found"),
        (("deploy", "--bogus"), "No such option '--bogus' (see `cortex deploy --help`)"),
        (("get", "-e", "prod"), "environment 'prod' is not configured"),
        (("completion", "fish"), "'fish' is not one of 'bash', 'zsh'"),
    ],
)
def test_bad_arguments(cli: CLI, args: tuple[str, ...], message: str) -> None:
    assert_one_error(cli(*args), message)
