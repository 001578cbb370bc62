"""Stopping a local runtime leaves none of its processes behind, even when its master is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cortex.cli import processes
from tests.runtime.harness import alive

# A stand-in for a runtime whose master was SIGKILLed: the session leader forks a child that
# stays (as a worker would), prints its pid and exits. Both carry the runtime's command line.
_ORPHAN = """
import os, sys, time
child = os.fork()
if child == 0:
    time.sleep(120)
    os._exit(0)
print(child, flush=True)
"""


@pytest.fixture
def orphan(tmp_path: Path):
    marker = str(tmp_path / "cortex.yaml")
    leader = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, "-m", "cortex.runtime", "--spec", marker],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert leader.stdout is not None
    with leader.stdout:
        child = int(leader.stdout.readline())
    leader.wait(30)
    yield leader.pid, child, marker
    if alive(child):
        os.kill(child, signal.SIGKILL)


def test_stop_kills_the_workers_of_a_master_that_is_already_dead(orphan) -> None:
    leader, child, marker = orphan
    assert alive(child) and not processes.is_ours(leader, marker)

    processes.stop(leader, marker, grace=1)

    assert not alive(child)


def test_stop_leaves_processes_of_other_markers_alone(orphan, tmp_path: Path) -> None:
    leader, child, _ = orphan

    processes.stop(leader, str(tmp_path / "other" / "cortex.yaml"), grace=1)

    assert alive(child)
