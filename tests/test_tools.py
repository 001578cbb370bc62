"""tests/tools.py, as pytest shows it: a missing tool skips its test with the reason, outside
CI; in CI it fails it. A tool in the virtualenv's bin is found with no PATH at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = """\
import sys

from tests import tools

def test_needs_a_missing_tool():
    tools.require("cortex-no-such-tool")

def test_finds_the_virtualenvs_python():
    assert tools.require("python").startswith(sys.prefix)
"""


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    """pytest on TESTS in ``tmp_path`` (its own rootdir), with ``CI=ci`` and an empty PATH."""
    (tmp_path / "test_needs.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env |= {"PYTHONPATH": str(ROOT), "PATH": str(tmp_path / "nothing-here")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the installed plugins are not under test
    if ci is not None:
        env["CI"] = ci
    args = [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "test_needs.py"]
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("ci", [None, "", "0", "false"])
def test_a_missing_tool_skips_with_its_reason_outside_ci(tmp_path: Path, ci: str | None) -> None:
    done = run_pytest(tmp_path, ci)

    assert done.returncode == 0, done.stdout
    assert "1 passed, 1 skipped" in done.stdout
    assert "cortex-no-such-tool is not installed" in done.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_tool_fails_in_ci(tmp_path: Path, ci: str) -> None:
    done = run_pytest(tmp_path, ci)

    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed" in done.stdout
    assert "cortex-no-such-tool is not installed: install it (CI requires it)" in done.stdout
