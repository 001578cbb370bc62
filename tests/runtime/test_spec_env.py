"""The runtime reads the spec a cluster puts in its environment, spread over several variables."""

from __future__ import annotations

import json

import pytest

from cortex.contracts import Flag, spec_env_parts
from cortex.runtime.master import parse_args, read_api
from tests.conftest import FIXTURES, spec_dict


def test_a_spec_spread_over_variables_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"words": [f"w{i:06d}" for i in range(30_000)]}  # ~300 KB of JSON
    body = {k: v for k, v in spec_dict(predictor={"config": config}).items() if k != "name"}
    parts = spec_env_parts("CORTEX_API_SPEC", json.dumps(body))
    assert len(parts) > 1
    for name, value in parts:
        monkeypatch.setenv(name, value)
    args = parse_args(
        [Flag.SPEC_ENV, "CORTEX_API_SPEC", Flag.API, "big", Flag.PROJECT_DIR, str(FIXTURES)]
    )

    api, project = read_api(args)

    assert (api.name, api.predictor.config) == ("big", config)
    assert project == FIXTURES.resolve()
