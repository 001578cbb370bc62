"""predictor.env_refs in the local environment: taken from the CLI's own environment."""

from __future__ import annotations

import httpx
import pytest

from tests.cli.conftest import CLI, api

pytestmark = pytest.mark.slow


def _spec(**refs: dict[str, object]) -> dict[str, object]:
    spec = api("echo", "env_echo.py", names=sorted(refs))
    spec["predictor"]["env_refs"] = refs  # type: ignore[index]
    return spec


def test_an_env_ref_takes_its_value_from_the_shell(cli: CLI) -> None:
    cli.write(_spec(HF_TOKEN={"secret": "hf-token", "key": "token"}))
    cli.env["HF_TOKEN"] = "hf_local_secret"

    cli.ok("deploy")
    url = f"http://127.0.0.1:{cli.port('echo')}/echo"
    answer = httpx.post(url, json={}, timeout=30, trust_env=False).json()

    assert answer == {"HF_TOKEN": "hf_local_secret"}


def test_an_unset_env_ref_is_an_error_naming_the_variable_and_starts_nothing(cli: CLI) -> None:
    cli.write(_spec(HF_TOKEN={"secret": "hf-token", "key": "token"}))
    cli.env.pop("HF_TOKEN", None)

    result = cli("deploy")

    assert result.returncode != 0
    assert (
        "api 'echo': predictor.env_refs.HF_TOKEN reads key 'token' of Secret 'hf-token' on a "
        "cluster; the local environment takes it from your shell: export HF_TOKEN=... and "
        "deploy again"
    ) in result.stderr
    assert not (cli.home / "local" / "echo" / "meta.json").exists()


def test_an_optional_env_ref_may_be_unset(cli: CLI) -> None:
    cli.write(_spec(LABELS={"config_map": "labels", "key": "labels.json", "optional": True}))
    cli.env.pop("LABELS", None)

    cli.ok("deploy")
    url = f"http://127.0.0.1:{cli.port('echo')}/echo"

    assert httpx.post(url, json={}, timeout=30, trust_env=False).json() == {"LABELS": None}
