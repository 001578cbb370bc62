"""The local environment through the real CLI: redeploys under load lose nothing, and a large
``predictor.config`` starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.cli.conftest import CLI, api, cli  # noqa: F401 (cli: the fixture)
from tests.reliability.conftest import Figures
from tests.reliability.load import Load


def _version(url: str) -> int:
    return int(httpx.post(url, json={}, timeout=30, trust_env=False).json()["version"])


def test_redeploys_under_load_lose_no_request(
    cli: CLI,  # noqa: F811
    figures: Figures,
    size: Callable[[Any, Any], Any],
) -> None:
    greeter = api("greeter", version=1)
    cli.write(greeter)
    cli.ok("deploy")
    url = f"http://127.0.0.1:{cli.port('greeter')}/greeter"
    redeploys = size(2, 8)
    with Load(url, clients=4) as load:
        load.wait_answers(50)
        for version in range(2, 2 + redeploys):
            greeter["predictor"]["config"]["version"] = version
            cli.write(greeter)
            cli.ok("deploy")
            assert _version(url) == version  # deploy returns once the new version serves
            served = len(load.answers)
            load.wait_answers(served + 20)
    figures.record(
        f"{redeploys} local redeploys, 4 clients",
        sent=len(load.answers),
        lost=len(load.failed()),
    )
    assert load.failed() == [], load.failed()[:5]
    cli.ok("delete", "greeter", "-y")


def test_a_300_kib_config_deploys_locally(cli: CLI, figures: Figures) -> None:  # noqa: F811
    cli.write(api("big", version=7, blob="x" * (300 * 1024)))
    cli.ok("deploy")
    url = f"http://127.0.0.1:{cli.port('big')}/big"
    figures.record("a 300 KiB predictor.config, local deploy", sent=1, lost=0)
    assert _version(url) == 7
