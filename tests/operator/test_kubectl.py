"""The real thing end to end: ``python -m cortex.operator`` in a process, driven by ``kubectl``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import tools
from tests.fakeapi import FakeCluster, wait_for
from tests.operator.conftest import (
    CHILDREN,
    CLUSTER_WIDE,
    DEPLOYMENTS,
    OPERATOR_TOKEN,
    OPERATOR_USER,
    ROUTING_ENV,
    OperatorCalls,
    kubectl,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _kubectl_is_installed() -> None:
    """Skips (in CI: fails) before the operator starts, not at the first kubectl call."""
    tools.require("kubectl")


CR = """\
apiVersion: cortex.dev/v1alpha1
kind: RealtimeAPI
metadata:
  name: iris
spec:
  predictor:
    type: python
    path: predictor.py
  compute:
    gpu: {gpu}
"""


@pytest.fixture
def cluster(tmp_path: Path, operator_calls: OperatorCalls) -> Iterator[FakeCluster]:
    with FakeCluster(tmp_path) as fake:
        yield fake
        operator_calls.add(CLUSTER_WIDE, fake)


@pytest.fixture
def operator_process(cluster: FakeCluster, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``python -m cortex.operator`` watching all namespaces as its ServiceAccount (installed
    with operator/'s manifests), stopped with SIGTERM."""
    for manifest in ("namespace.yaml", "crd.yaml", "rbac.yaml"):
        kubectl(cluster, "apply", "-f", str(ROOT / "operator" / manifest))
    cluster.add_user(OPERATOR_TOKEN, OPERATOR_USER)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig_for(OPERATOR_TOKEN, tmp_path / "operator-config")),
        "CORTEX_OPERATOR_NAMESPACE": "",  # all namespaces, as operator/deployment.yaml
        **ROUTING_ENV,
        "PYTHONPATH": str(ROOT),
    }
    log = (tmp_path / "operator.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cortex.operator"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        log.close()
        output = (tmp_path / "operator.log").read_text()
        assert code == 0, f"the operator exited with {code}:\n{output[-3000:]}"
        assert "Traceback" not in output, output[-3000:]


def test_kubectl_apply_get_delete_with_the_operator_process(
    cluster: FakeCluster, operator_process: subprocess.Popen[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "iris.yaml"
    manifest.write_text(CR.format(gpu=1))

    assert (
        "realtimeapi.cortex.dev/iris created"
        in kubectl(cluster, "apply", "-f", str(manifest)).stdout
    )
    wait_for(
        lambda: all(cluster.get(res, "api-iris") for res in CHILDREN),
        timeout=60,
        what="the children",
    )
    cluster.set_pods("api-iris", "ready")
    wait_for(
        lambda: (
            kubectl(cluster, "get", "rapi", "iris", "-o", "jsonpath={.status.status}").stdout
            == "live"
        ),
        what="kubectl to report live",
    )
    table = kubectl(cluster, "get", "rapi").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "STATUS",
        "REQUESTED",
        "READY",
        "UP-TO-DATE",
        "ENDPOINT",
        "AGE",
    ]
    assert table[1].split()[:6] == ["iris", "live", "1", "1", "1", "/iris"]

    manifest.write_text(CR.format(gpu=2))
    assert "configured" in kubectl(cluster, "apply", "-f", str(manifest)).stdout
    wait_for(
        lambda: (
            cluster.get(DEPLOYMENTS, "api-iris")["spec"]["template"]["spec"]["containers"][0][
                "resources"
            ]["limits"]["nvidia.com/gpu"]
            == "2"
        ),
        what="the GPU limit to follow the spec",
    )

    manifest.write_text(CR.format(gpu=-1))
    rejected = kubectl(cluster, "apply", "-f", str(manifest), check=False)
    assert rejected.returncode != 0 and "spec.compute.gpu" in rejected.stderr

    reasons = kubectl(
        cluster,
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=iris",
        "-o",
        "jsonpath={.items[*].reason}",
    ).stdout.split()
    assert "Live" in reasons

    assert (
        'realtimeapi.cortex.dev "iris" deleted' in kubectl(cluster, "delete", "rapi", "iris").stdout
    )
    assert (
        "No resources found" in kubectl(cluster, "get", "deployments,services,hpa,ingresses").stderr
    )
