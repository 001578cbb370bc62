"""The fake API server's own tests: a fresh cluster per test, an HTTP client and kubectl for it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import tools
from tests.fakeapi import FakeCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with FakeCluster(tmp_path) as fake:
        yield fake


@pytest.fixture
def http(cluster: FakeCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        yield client


class Kubectl:
    """Runs the real kubectl against the fake cluster."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        self.path = tools.require("kubectl")

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.path, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        """kubectl in the background (``rollout status``, ``get -w``)."""
        return subprocess.Popen(
            [self.path, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def kubectl(cluster: FakeCluster) -> Kubectl:
    return Kubectl(cluster)
