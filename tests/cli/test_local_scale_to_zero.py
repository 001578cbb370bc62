"""A local API with ``min_replicas: 0``: ``cortex get`` says ``scaled to zero`` once it sleeps,
without waking it, and the next request wakes it."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from cortex.contracts import COLD_START_HEADER
from tests.cli.conftest import CLI, api

pytestmark = pytest.mark.slow


def status(cli: CLI) -> str:
    [found] = json.loads(cli.ok("get", "-o", "json"))
    return str(found["status"])


def test_an_idle_local_api_shows_scaled_to_zero_and_a_request_wakes_it(cli: CLI) -> None:
    spec = api("napper")
    spec["autoscaling"] = {"min_replicas": 0, "scale_to_zero_after": "1s"}
    cli.write(spec)
    cli.ok("deploy")
    deadline = time.monotonic() + 60
    while status(cli) != "scaled to zero":
        assert time.monotonic() < deadline, "the API never went to sleep"
        time.sleep(0.1)
    assert status(cli) == "scaled to zero"  # looking did not wake it

    answer = httpx.post(f"http://127.0.0.1:{cli.port('napper')}/napper", json={}, timeout=60)

    assert answer.status_code == 200
    assert COLD_START_HEADER in answer.headers
