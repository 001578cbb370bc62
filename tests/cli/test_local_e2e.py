"""The local environment end to end, through the real CLI in subprocesses.

deploy -> get -> predict / plain HTTP -> redeploy under load -> logs -> delete.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from types import TracebackType

import httpx
import pytest

from cortex.cli import processes
from tests.cli.conftest import CLI, api, table_rows

pytestmark = pytest.mark.slow


class RequestLoop:
    """A client thread that posts to ``url`` until stopped, counting every failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[dict[str, object]] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30, trust_env=False) as client:
            while not self.stopping.is_set():
                try:
                    response = client.post(self.url, json={"name": "loop"})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text}")
                else:
                    self.answers.append(response.json())

    def wait_for(self, version: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(a.get("version") == version for a in self.answers[-50:]):
            assert time.monotonic() < deadline, f"never answered by version {version}"
            time.sleep(0.05)

    def __enter__(self) -> RequestLoop:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopping.set()
        self.thread.join(30)


def post(url: str, payload: object, **headers: str) -> httpx.Response:
    return httpx.post(url, json=payload, headers=headers, timeout=30, trust_env=False)


def test_two_apis_deploy_serve_update_without_failures_log_and_delete(cli: CLI) -> None:
    greeter, echoer = api("greeter", version=1), api("echoer", version=1)
    cli.write(greeter, echoer)

    out = cli.ok("deploy")
    g_port, e_port = cli.port("greeter"), cli.port("echoer")
    assert g_port != e_port
    g_url = f"http://127.0.0.1:{g_port}/greeter"
    assert "creating greeter (RealtimeAPI)" in out
    assert "creating echoer (RealtimeAPI)" in out
    assert f"greeter is live at http://localhost:{g_port}/greeter" in out
    assert f"echoer is live at http://localhost:{e_port}/echoer" in out

    rows = table_rows(cli.ok("get"))
    assert {name: row["status"] for name, row in rows.items()} == {
        "greeter": "live",
        "echoer": "live",
    }
    assert rows["greeter"]["up-to-date"] == rows["greeter"]["requested"] == "1"

    assert json.loads(cli.ok("predict", "greeter", "-d", '{"name": "ada"}')) == {
        "greeting": "hello ada",
        "version": 1,
    }
    answer = post(g_url, {"name": "bob"}, **{"x-request-id": "e2e-request-bob"})
    assert answer.json() == {"greeting": "hello bob", "version": 1}
    assert answer.headers["x-request-id"] == "e2e-request-bob"
    if shutil.which("curl"):
        headers = ["-H", "Content-Type: application/json", "-d", '{"name": "cy"}']
        curl = subprocess.run(
            ["curl", "-sS", "-X", "POST", f"http://localhost:{e_port}/echoer", *headers],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(curl.stdout) == {"greeting": "hello cy", "version": 1}

    followed = cli.project / "followed.log"
    with followed.open("w") as sink:
        follower = subprocess.Popen(
            [sys.executable, "-m", "cortex.cli.main", "logs", "greeter", "-f", "--pretty"],
            cwd=cli.project,
            env=cli.env,
            stdout=sink,
        )
    with RequestLoop(g_url) as loop:
        loop.wait_for(version=1)
        greeter["predictor"]["config"]["version"] = 2
        cli.write(greeter, echoer)
        out = cli.ok("deploy")
        loop.wait_for(version=2)
    assert "updating greeter (RealtimeAPI)" in out
    # cortex.yaml is a file of echoer's project too: as on a cluster, it reloads as well.
    assert "updating echoer (RealtimeAPI)" in out
    assert loop.failures == []
    assert len(loop.answers) > 10
    assert post(g_url, {}).json()["version"] == 2

    rows = table_rows(cli.ok("get"))
    assert rows["greeter"]["status"] == "live"
    assert rows["greeter"]["up-to-date"] == "1"
    assert int(rows["echoer"]["2XX"]) >= 1

    raw_log = cli.ok("logs", "greeter")
    assert "e2e-request-bob" in raw_log
    readable = cli.ok("logs", "greeter", "--pretty")
    assert "greeting bob  [request e2e-request-bob]" in readable

    pids = [cli.meta("greeter")["pid"], cli.meta("echoer")["pid"]]
    assert cli.ok("delete", "greeter", "-y").strip() == "deleting greeter"
    cli.ok("delete", "echoer", "-y")
    assert all(processes.command_line(pid) is None for pid in pids)
    assert cli.ok("get").strip() == "no apis are deployed in environment 'local'"
    assert not (cli.home / "local" / "greeter").exists()

    assert follower.wait(30) == 0  # -f ends once the API is deleted
    assert "greeting bob  [request e2e-request-bob]" in followed.read_text()
    assert "reloaded" in followed.read_text()
