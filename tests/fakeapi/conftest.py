"""The fake API server's own tests: a fresh cluster per test, and an HTTP client for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakeapi import FakeCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with FakeCluster(tmp_path) as fake:
        yield fake


@pytest.fixture
def http(cluster: FakeCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        yield client
