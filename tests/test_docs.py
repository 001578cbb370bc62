"""The docs' commands, run: every shell block marked runnable, as a user would type it.

A block is runnable when the line before its opening fence is ``<!-- runnable -->`` (GitHub
shows nothing of the comment). The runnable blocks of one page run in order in one bash
(``-e -o pipefail``), from the root of a copy of the repository, as after
``source .venv/bin/activate`` (the virtualenv's bin first on PATH), with a temporary
``CORTEX_HOME`` and ``HF_HUB_OFFLINE=1``. They run in a user and network namespace of their own
(``unshare``): no network at all, so a command that would download is caught, and
``localhost:8888`` is theirs whatever else this shared machine serves. Whatever they leave
running dies with the namespace's first process. ``curl`` fails on an error status there
(``fail-with-body`` in its config file), as ``cortex predict`` does.

Mark a block runnable only when it works offline on a fresh clone after ``scripts/setup.sh``
(examples that download a model on first start cannot be); the others must still work as
written, which review checks.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import tools

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *ROOT.glob("examples/*/README.md"), *ROOT.glob("docs/*.md")])
RUNNABLE = re.compile(r"^( *)<!-- runnable -->\n\1```(?:bash|sh)\n(.*?)^\1```", re.M | re.S)
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".*_cache")
TIMEOUT_S = 180  # a deploy loads torch and a model on a loaded machine


def runnable_blocks(page: Path) -> list[str]:
    """The runnable blocks of ``page``, each dedented to its fence's indentation."""
    blocks = []
    for indent, body in RUNNABLE.findall(page.read_text()):
        blocks.append("".join(line.removeprefix(indent) for line in body.splitlines(True)))
    return blocks


def programs(script: str) -> set[str]:
    """The first word of each line of ``script``: the programs it runs, and some noise."""
    return {line.split()[0] for line in script.splitlines() if line.strip()}


RUN = {page.relative_to(ROOT).as_posix(): runnable_blocks(page) for page in PAGES}
MARKED = sorted(name for name, blocks in RUN.items() if blocks)


def test_the_marked_pages_are_the_ones_meant() -> None:
    """A marker lost in an edit (or a fence the pattern misses) shows here, not as a pass."""
    assert MARKED == [
        "docs/cluster.md",
        "docs/monitoring.md",
        "examples/model-zoo/README.md",
        "examples/text-embedder/README.md",
    ]


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S + 60)
@pytest.mark.parametrize("page", MARKED)
def test_the_runnable_blocks_of_the_page_run_offline(page: str, tmp_path: Path) -> None:
    script = "\n".join(RUN[page])
    for program in programs(script) & tools.SOURCES.keys():
        tools.require(program)
    unshare, ip = tools.require("unshare"), tools.require("ip")
    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=NOT_COPIED)
    (tmp_path / ".curlrc").write_text("fail-with-body\n")
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(Path(venv_bin).parent),
        "CORTEX_HOME": str(tmp_path / "cortex-home"),
        "CURL_HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    namespace = [unshare, "--user", "--map-root-user", "--net", "--pid", "--fork", "--mount-proc"]
    bash = f"exec bash -e -o pipefail -x -c {shlex.quote(script)}"

    done = subprocess.run(
        [*namespace, "bash", "-c", f"{shlex.quote(ip)} link set lo up && {bash}"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )

    if done.returncode != 0 and "unshare failed" in done.stderr:
        tools.missing(f"no user or network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, f"{page}:\n{done.stdout}\n{done.stderr}"
