"""``cortex deploy`` on a hostile cortex.yaml: one ``error:`` line, no traceback, nothing runs."""

from __future__ import annotations

import pytest

from tests.cli.conftest import CLI
from tests.spec.hostile import HOSTILE


@pytest.mark.parametrize(("text", "fragment"), HOSTILE.values(), ids=HOSTILE.keys())
def test_deploy_of_a_hostile_spec_prints_one_error_line(cli: CLI, text: str, fragment: str) -> None:
    (cli.project / "predictor.py").write_text("class PythonPredictor: ...\n")
    (cli.project / "cortex.yaml").write_text(text)

    result = cli("deploy", timeout=60)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert fragment in result.stderr
    assert not (cli.home / "local" / "iris").exists()
