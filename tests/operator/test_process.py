"""``python -m cortex.operator`` as a process: kopf's health endpoint for the probes, and logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fakeapi import FakeCluster, kubeconfig
from tests.operator.conftest import RAPI, resource, wait_children
from tests.operator.process import OperatorProcess, free_port, get

pytestmark = pytest.mark.slow


def test_health_endpoint_answers_from_start_until_stop(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    with OperatorProcess(cluster.kubeconfig, tmp_path / "operator.log") as operator:
        assert get(operator.health) == (200, {})
        assert operator.stop() == 0
        assert get(operator.health) is None


def test_health_endpoint_does_not_ask_the_api_server(tmp_path: Path) -> None:
    nowhere = tmp_path / "kubeconfig"
    nowhere.write_text(yaml.safe_dump(kubeconfig(f"http://127.0.0.1:{free_port()}")))
    with OperatorProcess(nowhere, tmp_path / "operator.log") as operator:
        operator.wait_logged("Connect call failed")
        assert get(operator.health) == (200, {})


def test_json_logs_are_one_object_per_line_with_the_resource_they_are_about(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    with OperatorProcess(cluster.kubeconfig, log, "--log-format", "json") as operator:
        cluster.create(RAPI, resource("iris"))
        wait_children(cluster, "iris")
        assert get(operator.health) == (200, {})
        assert operator.stop() == 0

    records = operator.records()
    assert all({"message", "severity", "timestamp"} <= set(record) for record in records)
    about_iris = [r for r in records if r.get("object", {}).get("name") == "iris"]
    assert about_iris, records
    assert {r["object"]["kind"] for r in about_iris} == {"RealtimeAPI"}
    assert not [r for r in records if "/healthz" in r["message"]], "probes are not logged"
    assert any("Deployment created" in r["message"] for r in about_iris)
    routine = [r for r in records if r["message"].startswith("Handler '")]
    assert not routine, "kopf's line per watch event is dropped"


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_bad_settings_exit_2_with_an_error_naming_the_variable(
    log_format: str, tmp_path: Path
) -> None:
    env = {**os.environ, "CORTEX_OPERATOR_AUTOSCALER": "maybe"}
    done = subprocess.run(
        [sys.executable, "-m", "cortex.operator", "--log-format", log_format],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    if log_format == "json":
        record = json.loads(line)
        assert record["severity"] == "error"
        assert record["message"].startswith("CORTEX_OPERATOR_AUTOSCALER 'maybe'")
    else:
        assert "[ERROR   ] CORTEX_OPERATOR_AUTOSCALER 'maybe'" in line
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
