"""The local environment's harder cases: crashes, stale pids, failed updates, port moves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from cortex.cli import processes
from tests.cli.conftest import CLI, api, table_rows
from tests.conftest import free_port
from tests.runtime.harness import alive, children

pytestmark = pytest.mark.slow


def answer(port: int, name: str) -> dict[str, object]:
    response = httpx.post(f"http://127.0.0.1:{port}/{name}", json={}, timeout=30, trust_env=False)
    return dict(response.json())


def wait_dead(pid: int) -> None:
    deadline = time.monotonic() + 30
    while processes.command_line(pid) is not None:
        assert time.monotonic() < deadline, f"{pid} did not die"
        time.sleep(0.05)


def test_a_crashed_api_shows_error_and_a_redeploy_brings_it_back(cli: CLI) -> None:
    spec = api("crashy")
    cli.write(spec)
    deployed = json.loads(cli.ok("deploy", "-o", "json"))
    port = cli.port("crashy")
    assert deployed == [
        {
            "name": "crashy",
            "kind": "RealtimeAPI",
            "action": "create",
            "endpoint": f"http://localhost:{port}/crashy",
            "status": "live",
            "error": None,
        }
    ]
    pid = cli.meta("crashy")["pid"]
    os.killpg(pid, signal.SIGKILL)
    wait_dead(pid)

    [status] = json.loads(cli.ok("get", "-o", "json"))
    assert (status["status"], status["up_to_date"]) == ("error", 0)
    assert status["message"].startswith("the process is not running")
    assert "error: the process is not running" in cli.ok("get", "crashy")

    out = cli.ok("deploy")
    assert "updating crashy (RealtimeAPI)" in out
    assert table_rows(cli.ok("get"))["crashy"]["status"] == "live"
    # The same port when still free (another program may have taken it meanwhile).
    assert answer(cli.port("crashy"), "crashy")["version"] == 1


def test_a_recycled_pid_is_not_taken_for_the_api(cli: CLI) -> None:
    cli.write(api("stale"))
    cli.ok("deploy")
    meta_file = cli.home / "local" / "stale" / "meta.json"
    meta = json.loads(meta_file.read_text())
    os.killpg(meta["pid"], signal.SIGKILL)
    wait_dead(meta["pid"])
    # An unrelated live process now holds the recorded pid.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meta_file.write_text(json.dumps({**meta, "pid": stranger.pid}))
        assert table_rows(cli.ok("get"))["stale"]["status"] == "error"
        cli.ok("delete", "stale", "-y")
        assert stranger.poll() is None  # delete did not signal the stranger
    finally:
        stranger.kill()
        stranger.wait()


def test_a_failed_update_keeps_the_old_version_serving(cli: CLI) -> None:
    spec = api("steady")
    cli.write(spec)
    cli.ok("deploy")
    port = cli.port("steady")
    spec["predictor"]["path"] = "init_fails.py"
    cli.write(spec)
    result = cli("deploy")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: api 'steady' failed to update: predictor __init__ raised RuntimeError: "
        "model file weights.bin is missing; the previous version keeps serving\n"
    )
    assert answer(port, "steady")["version"] == 1
    row = table_rows(cli.ok("get"))["steady"]
    assert (row["status"], row["up-to-date"]) == ("live", "0")
    assert "last update failed: predictor __init__ raised RuntimeError" in cli.ok("get", "steady")

    spec["predictor"]["path"] = "greeter.py"
    cli.write(spec)
    (cli.project / "init_fails.py").unlink()  # the project is again the one that serves
    assert "steady is up to date" in cli.ok("deploy")
    assert table_rows(cli.ok("get"))["steady"]["up-to-date"] == "1"


def test_a_new_port_moves_the_api(cli: CLI) -> None:
    spec = api("mover")
    cli.write(spec)
    cli.ok("deploy")
    old_port, old_pid = cli.port("mover"), cli.meta("mover")["pid"]
    new_port = free_port()
    spec["networking"] = {"local_port": new_port}
    cli.write(spec)
    assert f"mover is live at http://localhost:{new_port}/mover" in cli.ok("deploy")
    assert answer(new_port, "mover")["version"] == 1
    # The old process is gone (its port is free then, though a program beside this test, even
    # a second run of this suite, may take it at once: so no check of the port itself).
    assert new_port != old_port and processes.command_line(old_pid) is None
    new_pid = cli.meta("mover")["pid"]
    cli.ok("delete", "mover", "-y")
    wait_dead(new_pid)


def test_an_api_deployed_from_another_folder_is_replaced_only_when_confirmed(cli: CLI) -> None:
    spec = api("shared-name")
    cli.write(spec)
    cli.ok("deploy")
    port = cli.port("shared-name")
    first_project = cli.project
    cli.project = first_project.parent / "other-project"
    cli.project.mkdir()
    spec["predictor"]["config"] = {"version": 2}
    cli.write(spec)
    result = cli("deploy")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: api 'shared-name' is already deployed from {first_project}; "
        "deploy with -y to replace it\n"
    )
    assert answer(port, "shared-name")["version"] == 1
    assert "updating shared-name (RealtimeAPI)" in cli.ok("deploy", "-y")
    assert answer(cli.port("shared-name"), "shared-name")["version"] == 2
    assert cli.meta("shared-name")["project_dir"] == str(cli.project)


def test_status_counts_come_from_the_runtime_metrics(cli: CLI) -> None:
    spec = api("codes", "status_codes.py")
    cli.write(spec)
    cli.ok("deploy")
    port = cli.port("codes")
    url = f"http://127.0.0.1:{port}/codes"
    for payload in ({"code": 200}, {"code": 201}, {"code": 404}, {"fail": True}):
        httpx.post(url, json=payload, timeout=30, trust_env=False)
    row = table_rows(cli.ok("get"))["codes"]
    assert (row["2XX"], row["4XX"], row["5XX"]) == ("2", "1", "1")
    assert row["avg request"].endswith(" ms")
    result = cli("predict", "codes", "-d", '{"code": 418}')
    assert result.returncode == 1
    assert result.stderr == "error: api 'codes' answered 418: {\"code\": 418}\n"


def test_get_watch_refreshes_until_interrupted(cli: CLI) -> None:
    cli.write(api("watched"))
    cli.ok("deploy")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cortex.cli.main", "get", "-w"],
        cwd=cli.project,
        env=cli.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None
    # Should the refreshes never come, kill it: the loop below then ends with the pipe.
    guard = threading.Timer(60, watcher.kill)
    guard.start()
    refreshes = 0
    for line in watcher.stdout:  # two refreshes seen, however long the machine takes
        refreshes += "watched   live" in line
        if refreshes == 2:
            break
    guard.cancel()
    watcher.send_signal(signal.SIGINT)
    rest, _ = watcher.communicate(timeout=30)
    assert refreshes == 2, rest
    assert watcher.returncode == 0


def test_a_sigkilled_master_leaves_no_process_or_port_to_redeploy_or_delete(cli: CLI) -> None:
    port = free_port()
    spec = api("orphans", port=port)
    spec["predictor"]["processes_per_replica"] = 2
    cli.write(spec)
    cli.ok("deploy")
    master = cli.meta("orphans")["pid"]
    workers = children(master)
    os.kill(master, signal.SIGKILL)  # the master only, as the OOM killer would
    wait_dead(master)

    cli.ok("deploy")  # on the same port: nothing of the old runtime holds it
    assert answer(port, "orphans")["version"] == 1
    assert not any(alive(pid) for pid in workers)
    redeployed = [cli.meta("orphans")["pid"], *children(cli.meta("orphans")["pid"])]
    cli.ok("delete", "orphans", "-y")

    assert not any(alive(pid) for pid in redeployed)
    assert not processes.port_in_use(port)
