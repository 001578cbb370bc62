"""The commands around the APIs: version, completion, environments, serve."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from tests.cli.conftest import CLI, api
from tests.fakeapi import kubeconfig, wait_for

ROOT = Path(__file__).parents[2]


def test_version_is_the_distribution_version(cli: CLI) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert cli.ok("version") == f"cortex {version}\n"
    assert cli.ok("--version") == f"cortex {version}\n"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_is_printed_for_the_shell(cli: CLI, shell: str) -> None:
    script = cli.ok("completion", shell)
    assert "_CORTEX_COMPLETE" in script
    assert "_cortex_completion" in script


def complete(cli: CLI, *words: str) -> list[str]:
    env = {
        **cli.env,
        "_CORTEX_COMPLETE": "bash_complete",
        "COMP_WORDS": " ".join(["cortex", *words]),
        "COMP_CWORD": str(len(words)),
    }
    result = subprocess.run(
        [sys.executable, "-m", "cortex.cli.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_completion_offers_commands_and_deployed_api_names(cli: CLI) -> None:
    assert sorted(complete(cli, "de")) == ["delete", "deploy"]
    folder = cli.home / "local" / "my-api"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(
        '{"name": "my-api", "kind": "RealtimeAPI", "pid": 0, "port": 1, "project_dir": "/p",'
        ' "endpoint": "/my-api", "spec_hash": "h", "created": 0, "updated": 0}'
    )
    assert complete(cli, "logs", "my") == ["my-api"]


def test_local_is_the_built_in_default_environment(cli: CLI) -> None:
    assert cli.ok("env", "default") == "local\n"
    lines = cli.ok("env", "list").splitlines()
    assert lines[0].split() == ["env", "kind", "default", "context", "namespace", "where"]
    assert lines[1].split()[:3] == ["local", "local", "*"]


def test_a_cluster_environment_is_recorded_chosen_and_forgotten(cli: CLI, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(kubeconfig("http://127.0.0.1:1", context="kind-prod")))
    cli.ok(
        "env", "configure", "prod", "--kube-context", "kind-prod", "--namespace", "ml",
        "--kubeconfig", str(config),
    )  # fmt: skip
    cli.ok("env", "default", "prod")
    assert cli.ok("env", "default") == "prod\n"
    row = cli.ok("env", "list").splitlines()[2].split()
    assert row[:5] == ["prod", "kubernetes", "*", "kind-prod", "ml"]
    result = cli("get")  # nothing listens on port 1
    assert result.returncode == 1
    assert result.stderr == (
        "error: cannot reach the API server http://127.0.0.1:1 of context 'kind-prod': "
        "connection refused; check the cluster is up and the kubeconfig points at it\n"
    )
    assert "no apis are deployed" in cli.ok("get", "-e", "local")
    cli.ok("env", "delete", "prod")
    assert cli.ok("env", "default") == "local\n"


def test_the_local_environment_cannot_be_configured_or_deleted(cli: CLI) -> None:
    for args in (("configure", "local", "--kube-context", "x"), ("delete", "local")):
        result = cli("env", *args)
        assert result.returncode == 1
        assert result.stderr.startswith("error: environment 'local' is built in")


@pytest.mark.slow
def test_serve_runs_one_api_in_the_foreground(cli: CLI) -> None:
    cli.write(api("fg"))
    server = subprocess.Popen(
        [sys.executable, "-m", "cortex.cli.main", "serve", "--port", "0"],
        cwd=cli.project,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = None
        for line in server.stdout:  # the log it prints says where it listens, then when ready
            record = json.loads(line)
            if record["message"].startswith("listening on 127.0.0.1:"):
                port = int(record["message"].rsplit(":", 1)[1])
            if record["message"].startswith("predictor loaded"):
                break
        assert port is not None
        # Ready once every process loaded: the master says so a moment after the log line.
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", trust_env=False).is_success,
            what="readiness",
        )
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
