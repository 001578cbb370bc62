"""networking.auth in the local environment: ``export TOKEN=...; cortex deploy`` protects the API,
``cortex predict`` sends the token from the same shell, and no output ever shows it."""

from __future__ import annotations

import httpx
import pytest

from tests.cli.conftest import CLI, api

pytestmark = pytest.mark.slow

TOKEN = "local-t0ken-8d1e"


def _spec() -> dict[str, object]:
    spec = api("guarded")
    spec["predictor"]["env_refs"] = {"API_TOKEN": {"secret": "api-token", "key": "token"}}  # type: ignore[index]
    spec["networking"] = {"auth": {"token_env": "API_TOKEN"}}
    return spec


def test_an_exported_token_protects_the_local_api_and_is_never_shown(cli: CLI) -> None:
    cli.write(_spec())
    cli.env["API_TOKEN"] = TOKEN

    deployed = cli.ok("deploy")
    url = f"http://127.0.0.1:{cli.port('guarded')}/guarded"
    anonymous = httpx.post(url, json={"name": "eve"}, timeout=30, trust_env=False)
    predicted = cli.ok("predict", "guarded", "-d", '{"name": "ada"}')
    shown = deployed + cli.ok("get") + cli.ok("get", "guarded") + cli.ok("logs", "guarded")

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "hello ada" in predicted
    assert TOKEN not in shown
    assert TOKEN not in "".join(p.read_text() for p in cli.home.rglob("*") if p.is_file())


def test_deploy_without_the_token_exported_starts_nothing(cli: CLI) -> None:
    cli.write(_spec())
    cli.env.pop("API_TOKEN", None)

    result = cli("deploy")

    assert result.returncode == 1
    assert result.stderr.startswith("error: api 'guarded': predictor.env_refs.API_TOKEN reads key")
    assert not (cli.home / "local" / "guarded" / "meta.json").exists()
