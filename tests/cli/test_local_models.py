"""``cortex get NAME`` of a multi-model API lists its models, versions and what is loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from cortex.cli import format
from tests.cli.conftest import CLI

FIXTURE = Path(__file__).parent.parent / "fixtures" / "many_models.py"


def test_get_name_lists_the_models_their_versions_and_what_is_loaded(cli: CLI) -> None:
    shutil.copy(FIXTURE, cli.project / "predictor.py")
    for name, version in (("iris", "1"), ("iris", "2"), ("wine", "1")):
        folder = cli.project / "models" / name / version
        folder.mkdir(parents=True)
        (folder / "weights.txt").write_text(f"{name}-{version}")
    models = {"dir": "models", "cache_size": 2, "poll_interval": 0}
    spec = {"name": "zoo", "kind": "RealtimeAPI"}
    spec["predictor"] = {"type": "python", "path": "predictor.py", "models": models}
    (cli.project / "cortex.yaml").write_text(yaml.safe_dump([spec]))
    cli.ok("deploy")
    answer = cli.ok("predict", "zoo", "-q", "model=iris", "-d", "{}")
    assert '"model": "iris-2"' in answer or '"model":"iris-2"' in answer

    out = cli.ok("get", "zoo")

    block = out[out.index("models:") :].splitlines()
    assert block[1].split() == ["model", "versions", "latest", "loaded"]
    assert block[2].split() == ["iris", "1,", "2", "2", "2"]
    assert block[3].split() == ["wine", "1", "1", "-"]
    assert block[4].strip() == "in memory: 1 of 2 models, 6 B; on disk: 0 downloaded"


def test_model_lines_are_empty_for_an_api_without_models() -> None:
    assert format.model_lines({"name": "plain"}) == ()


def test_model_lines_show_the_byte_budget() -> None:
    described = {
        "models": [{"name": "a", "versions": [1], "latest": 1, "loaded": [1]}],
        "model_cache": {
            "cache_size": None,
            "max_bytes": 2**30,
            "disk_cache_size": 5,
            "memory": {"models": 1, "bytes": 3 * 2**20},
            "disk": {"models": 1, "bytes": 3 * 2**20},
        },
    }
    assert format.model_lines(described)[-1] == (
        "in memory: 1 models, 3 MiB of 1 GiB; on disk: 1 downloaded (of 5)"
    )
