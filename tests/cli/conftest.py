"""Runs the real ``cortex`` CLI in subprocesses, with its state in a temporary CORTEX_HOME.

Every API process a test starts is killed at teardown, whatever the test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex.cli import processes

FIXTURES = Path(__file__).parent / "fixtures"


class CLI:
    """``cortex ARGS`` run in ``project`` with ``CORTEX_HOME=home``."""

    def __init__(self, home: Path, project: Path) -> None:
        self.home = home
        self.project = project
        self.env = {**os.environ, "CORTEX_HOME": str(home)}

    def __call__(
        self, *args: str, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cortex.cli.main", *args],
            cwd=self.project,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, timeout: float = 120) -> str:
        """Run, expect exit code 0, return stdout."""
        result = self(*args, timeout=timeout)
        assert result.returncode == 0, f"cortex {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    def meta(self, name: str) -> dict[str, Any]:
        return json.loads((self.home / "local" / name / "meta.json").read_text())

    def port(self, name: str) -> int:
        """The port the deployed API ``name`` listens on."""
        return int(self.meta(name)["port"])

    def write(self, *apis: dict[str, Any]) -> Path:
        """Write ``cortex.yaml`` with these APIs, copying the fixture predictors they name."""
        for api in apis:
            source = FIXTURES / api["predictor"]["path"]
            (self.project / source.name).write_text(source.read_text())
        config = self.project / "cortex.yaml"
        config.write_text(yaml.safe_dump(list(apis), sort_keys=False))
        return config


def api(name: str, path: str = "greeter.py", port: int | None = None, **config: Any) -> dict:
    """One API of ``cortex.yaml``: a fixture predictor on ``port`` (by default the local
    environment picks a free one: read it with ``CLI.port``)."""
    spec: dict[str, Any] = {
        "name": name,
        "kind": "RealtimeAPI",
        "predictor": {"type": "python", "path": path, "config": config},
    }
    if port is not None:
        spec["networking"] = {"local_port": port}
    return spec


def table_rows(text: str) -> dict[str, dict[str, str]]:
    """The rows of a ``cortex get`` table by api name (columns split on runs of 3+ spaces)."""
    lines = [line for line in text.splitlines() if line.strip()]
    headers = _cells(lines[0])
    rows = [dict(zip(headers, _cells(line), strict=True)) for line in lines[1:]]
    return {row["api"]: row for row in rows}


def _cells(line: str) -> list[str]:
    return re.split(r"\s{3,}", line.strip())


def kill_leftovers(home: Path) -> None:
    for meta_file in (home / "local").glob("*/meta.json"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(json.loads(meta_file.read_text())["pid"])
            if processes.is_ours(pid, str(meta_file.parent / "cortex.yaml")):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[CLI]:
    project = tmp_path / "project"
    project.mkdir()
    runner = CLI(tmp_path / "home", project)
    try:
        yield runner
    finally:
        kill_leftovers(runner.home)
