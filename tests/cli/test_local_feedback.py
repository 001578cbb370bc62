"""What the local environment tells the user: its log, why an API died, warnings and hints."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.cli.conftest import CLI, api, table_rows
from tests.runtime.harness import alive, children

pytestmark = pytest.mark.slow


def wait_until(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_library_lines_appear_once_and_probes_stay_out_of_the_log(cli: CLI) -> None:
    cli.write(api("chatty", path="library_logs.py"))
    cli.ok("deploy")
    cli.ok("predict", "chatty", "-d", "{}")
    for _ in range(3):
        assert table_rows(cli.ok("get"))["chatty"]["status"] == "live"
        cli.ok("get", "chatty")

    log = cli.ok("logs", "chatty", "--raw")

    assert log.count("fetching weights") == 1, log
    assert log.count("scoring a request") == 1, log
    assert log.count("POST /chatty") == 1, log
    for probe in ("/readyz", "/metrics", "/healthz"):
        assert probe not in log, log


def test_a_killed_master_is_the_reason_shown_not_an_older_recovered_worker_crash(
    cli: CLI,
) -> None:
    cli.write(api("phoenix"))
    cli.ok("deploy")
    master = cli.meta("phoenix")["pid"]
    [worker] = children(master)
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: [p for p in children(master) if p != worker], "a replacement worker")
    wait_until(lambda: "live" in cli.ok("get", "phoenix"), "the replacement to serve")
    assert "killed by SIGKILL" in cli.ok("logs", "phoenix", "--raw")  # the recovered crash

    os.kill(master, signal.SIGKILL)
    wait_until(lambda: not alive(master), "the master to die")
    shown = cli.ok("get", "phoenix")

    assert f"its main process (pid {master}) died while ready, without logging why" in shown
    assert "error: the process is not running" in shown
    assert "worker" not in shown.split("last log lines")[0]
