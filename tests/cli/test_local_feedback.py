"""What the local environment tells the user: its log, why an API died, warnings and hints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.cli.conftest import CLI, api, table_rows
from tests.runtime.harness import alive, children

pytestmark = pytest.mark.slow


def wait_until(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
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


def test_a_gpu_api_on_a_machine_without_one_gets_one_warning(cli: CLI) -> None:
    spec = api("gpu-hungry")
    spec["compute"] = {"gpu": 1}
    cli.write(spec)
    cli.env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU, whatever this machine has

    result = cli("deploy")

    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: api 'gpu-hungry' asks for compute.gpu 1 but this machine has no GPU "
        "(no nvidia-smi, no /dev/nvidia*, or CUDA_VISIBLE_DEVICES hides them); it runs on "
        "the CPU here"
    ]
    assert "gpu-hungry is live" in result.stdout


def test_a_gpu_api_where_nvidia_smi_is_found_gets_no_warning(cli: CLI) -> None:
    spec = api("gpu-fed")
    spec["compute"] = {"gpu": 1}
    cli.write(spec)
    bin_dir = cli.project.parent / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    cli.env.pop("CUDA_VISIBLE_DEVICES", None)
    cli.env["PATH"] = f"{bin_dir}{os.pathsep}{cli.env['PATH']}"

    result = cli("deploy")

    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr


def test_deploy_shows_what_a_slow_init_last_logged_while_it_waits(cli: CLI) -> None:
    gate = cli.project / "gate"
    cli.write(api("slowpoke", path="retries_download.py", gate=str(gate)))
    seen: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "cortex.cli.main", "deploy"],
        cwd=cli.project,
        env=cli.env,
        stdout=subprocess.PIPE,
        text=True,
    ) as deploy:
        reader = threading.Thread(target=lambda: seen.extend(deploy.stdout or ()), daemon=True)
        reader.start()
        try:
            wait_until(lambda: any("retrying" in line for line in seen), "the init's log line")
            gate.touch()
            assert deploy.wait(120) == 0, seen
        finally:
            deploy.kill()
        reader.join(30)

    assert (
        "waiting for slowpoke (loading: download attempt 1 failed: network unreachable; retrying)\n"
    ) in seen
    assert "slowpoke is live" in seen[-1]


def test_get_says_when_requests_queue_for_a_thread(cli: CLI) -> None:
    spec = api("one-lane", path="sleeper.py")
    spec["predictor"]["threads_per_process"] = 1
    cli.write(spec)
    cli.ok("deploy")
    url = f"http://127.0.0.1:{cli.port('one-lane')}/one-lane"
    cli.ok("predict", "one-lane", "-d", '{"seconds": 0}')
    assert "queue for threads" not in cli.ok("get", "one-lane")

    def post(seconds: float) -> None:
        httpx.post(url, json={"seconds": seconds}, timeout=60, trust_env=False)

    slow = [threading.Thread(target=post, args=(1.5,)) for _ in range(2)]
    for thread in slow:
        thread.start()
    post(0)  # the fast one waits behind both
    for thread in slow:
        thread.join(60)
    shown = cli.ok("get", "one-lane")

    assert "requests queue for threads: waited p50 <= " in shown, shown
    assert "raise threads_per_process or processes_per_replica" in shown
    [status] = json.loads(cli.ok("get", "one-lane", "-o", "json"))
    assert status["queue_wait_p99_seconds"] >= 1.0


def test_a_master_that_crashes_while_serving_shows_its_own_error(cli: CLI) -> None:
    cli.write(api("brittle"))
    cli.ok("deploy")
    master = cli.meta("brittle")["pid"]
    status_file = cli.home / "local" / "brittle" / "status.json"
    status_file.unlink()
    status_file.mkdir()  # the next status update (on SIGHUP) cannot replace it: the master fails
    (status_file / "in-the-way").touch()

    os.kill(master, signal.SIGHUP)
    wait_until(lambda: not alive(master), "the master to crash")
    shown = cli.ok("get", "brittle")

    assert "error: the process is not running: the master process crashed: " in shown, shown
    assert "IsADirectoryError" in shown
