"""networking.auth: a bearer token from an environment variable guards every route but health."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex.contracts import Flag
from tests.conftest import serving, spec_dict
from tests.runtime.harness import RuntimeProcess, write_spec

TOKEN = "s3cr3t-t0ken-value-4f9a"
ENV = "API_TOKEN"

pytestmark = pytest.mark.anyio


def _auth(**extra: Any) -> dict[str, Any]:
    return {
        "predictor": {"env_refs": {ENV: {"secret": "api-token", "key": "token"}}},
        "networking": {"auth": {"token_env": ENV, **extra}},
    }


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TOKEN)


@pytest.mark.usefixtures("token_env")
@pytest.mark.parametrize(
    "headers",
    [{}, _bearer("wrong"), _bearer(TOKEN + "x"), {"authorization": TOKEN}, _bearer("")],
    ids=["missing", "wrong", "longer", "no-scheme", "empty"],
)
async def test_a_prediction_without_the_token_is_401_json_with_a_challenge(
    headers: dict[str, str],
) -> None:
    async with serving("echo.py", **_auth()) as client:
        answer = await client.post("/predict", json={}, headers={**headers, "x-request-id": "r1"})

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.headers["x-request-id"] == "r1"
    body = answer.json()
    assert set(body) == {"error", "request_id"} and body["request_id"] == "r1"
    assert body["error"].startswith("unauthorized: the bearer token")
    assert TOKEN not in answer.text


@pytest.mark.usefixtures("token_env")
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_right_token_is_served_whatever_the_scheme_case(scheme: str) -> None:
    async with serving("echo.py", **_auth()) as client:
        answer = await client.post(
            "/test-api", json={"x": 1}, headers={"authorization": f"{scheme} {TOKEN}"}
        )

    assert answer.status_code == 200
    assert answer.json()["payload"] == {"x": 1}


@pytest.mark.usefixtures("token_env")
@pytest.mark.parametrize("path", ["/test-api", "/predict", "/docs", "/openapi.json", "/nowhere"])
async def test_the_description_and_docs_need_the_token_too(path: str) -> None:
    async with serving("echo.py", **_auth()) as client:
        refused = await client.get(path)
        allowed = await client.get(path, headers=_bearer())

    assert refused.status_code == 401
    assert allowed.status_code == (404 if path == "/nowhere" else 200)


@pytest.mark.usefixtures("token_env")
@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/metrics"]
)
async def test_health_readiness_and_metrics_stay_open(path: str) -> None:
    async with serving("echo.py", **_auth()) as client:
        answer = await client.get(path)

    assert answer.status_code == 200


@pytest.mark.usefixtures("token_env")
async def test_protect_metrics_puts_metrics_behind_the_token() -> None:
    async with serving("echo.py", **_auth(protect_metrics=True)) as client:
        refused = await client.get("/metrics")
        allowed = await client.get("/metrics", headers=_bearer())
        health = await client.get("/healthz")

    assert (refused.status_code, allowed.status_code, health.status_code) == (401, 200, 200)


@pytest.mark.usefixtures("token_env")
async def test_any_path_predictions_need_the_token() -> None:
    async with serving("echo.py", any_path=True, **_auth()) as client:
        refused = await client.post("/some/route", json={})
        allowed = await client.post("/some/route", json={}, headers=_bearer())

    assert (refused.status_code, allowed.status_code) == (401, 200)


@pytest.mark.parametrize("value", [None, "", " padded", "line\n"])
def test_the_runtime_refuses_to_start_without_a_usable_token(
    tmp_path: Path, value: str | None
) -> None:
    spec = write_spec(tmp_path, "echo.py", **_auth())
    env = {k: v for k, v in dict(os.environ).items() if k != ENV}
    if value is not None:
        env[ENV] = value

    with RuntimeProcess(spec, env=env, wait=False) as runtime:
        code = runtime.exit_code()

    output = runtime.output()
    assert code == 2
    assert f"error: api 'proc-api': networking.auth.token_env {ENV} " in output
    assert "Traceback" not in output


def test_a_real_runtime_checks_the_token_and_never_logs_it(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py", **_auth())

    with RuntimeProcess(spec, Flag.ACCESS_LOG, env={**dict(os.environ), ENV: TOKEN}) as runtime:
        refused = runtime.post(json={}, headers=_bearer("a-wrong-guess"))
        allowed = runtime.post(json={}, headers=_bearer())
        health = runtime.get("/healthz")
        runtime.wait_for(lambda: runtime.output().count('"POST /predict') >= 2, what="access log")

    assert (refused.status_code, allowed.status_code, health.status_code) == (401, 200, 200)
    assert TOKEN not in runtime.output()
    assert "a-wrong-guess" not in runtime.output()
    assert TOKEN not in runtime.status_file.read_text()


def test_a_reload_to_auth_without_the_token_keeps_the_old_version_serving(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "echo.py")
    env = {k: v for k, v in os.environ.items() if k != ENV}

    with RuntimeProcess(spec, env=env) as runtime:
        old_hash = runtime.status()["spec_hash"]
        spec.write_text(yaml.safe_dump([spec_dict("proc-api", "echo.py", **_auth())]))
        runtime.proc.send_signal(signal.SIGHUP)
        runtime.wait_for(lambda: runtime.status()["cause"] is not None, what="a reload error")
        status = runtime.status()
        answer = runtime.post(json={})

    assert (status["state"], status["spec_hash"]) == ("ready", old_hash)
    assert f"networking.auth.token_env {ENV} is unset or empty" in status["cause"]
    assert answer.status_code == 200
