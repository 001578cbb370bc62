"""A fake cluster with one API at zero, a real activator process in front of it, and real
runtime processes to play its replicas.

The API's Service targets a numeric port that the test's backends listen on, each on its own
loopback address (127.0.0.2, 127.0.0.3, ...): the fake kubelet reports those as the pod IPs
(``FakeCluster.set_pods(..., ips=...)``), so the EndpointSlices the activator reads point at
real processes.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from cortex.k8s import OperatorSettings, Owner, custom_resource_definition, render
from cortex.spec import parse_api_spec
from tests.conftest import FIXTURES
from tests.fakeapi import FakeCluster
from tests.runtime.harness import terminate

CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
RAPIS = "cortex.dev/v1alpha1/realtimeapis"
NAME = "echo"
PATH = "/echo"
READY_WITHIN = 60.0
ADDRESS_OF_NONE = "127.0.0.1"


def bind(address: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    return sock


def shared_port(addresses: list[str]) -> tuple[int, list[socket.socket]]:
    """A port free on every address, bound on each (listen later, in the runtime)."""
    for _ in range(50):
        first = bind(addresses[0])
        port = first.getsockname()[1]
        socks = [first]
        try:
            socks += [bind(address, port) for address in addresses[1:]]
        except OSError:
            for sock in socks:
                sock.close()
            continue
        return port, socks
    raise RuntimeError("no port free on all of " + ", ".join(addresses))


def unused_port() -> int:
    """A port for an API whose replicas never start in the test."""
    with bind(ADDRESS_OF_NONE) as sock:
        port: int = sock.getsockname()[1]
    return port


def until(check: Callable[[], Any], what: str, within: float = READY_WITHIN) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Backend:
    """``python -m cortex.runtime`` on an inherited socket: one replica of the API."""

    def __init__(self, sock: socket.socket, folder: Path, predictor: str = "echo.py") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / predictor).write_text((FIXTURES / predictor).read_text())
        spec = {
            "name": NAME,
            "kind": "RealtimeAPI",
            "predictor": {"type": "python", "path": predictor},
        }
        (folder / "cortex.yaml").write_text(yaml.safe_dump([spec]))
        sock.listen(128)
        self.address, self.port = sock.getsockname()
        self.url = f"http://{self.address}:{self.port}"
        cmd = [sys.executable, "-m", "cortex.runtime", "--spec", str(folder / "cortex.yaml")]
        cmd += ["--fd", str(sock.fileno()), "--any-path"]
        with (folder / "runtime.log").open("w") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, pass_fds=[sock.fileno()]
            )
        sock.close()

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def requests_served(self) -> float:
        text = httpx.get(self.url + "/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("cortex_requests_total{")
        )

    def stop(self) -> None:
        terminate(self.proc)


class Activator:
    """``python -m cortex.activator`` against the fake cluster; ``with`` waits for /readyz."""

    def __init__(self, cluster: FakeCluster, folder: Path, *args: str) -> None:
        sock = bind("127.0.0.1")
        self.port = sock.getsockname()[1]
        sock.close()  # the activator binds it again at once (a tiny window, on loopback)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "activator.log"
        cmd = [sys.executable, "-m", "cortex.activator", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--kubeconfig", str(cluster.kubeconfig), *args]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def __enter__(self) -> Activator:
        until(self._ready, f"the activator to be ready (log: {self.log})")
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the activator exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def __exit__(self, *exc: object) -> None:
        terminate(self.proc)

    def metric(self, name: str) -> float:
        """The value of the API's series ``name`` on /metrics (0 when absent)."""
        text = httpx.get(self.url + "/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + "{") and f'api_name="{NAME}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def api_at_zero(cluster: FakeCluster, port: int, **autoscaling: Any) -> None:
    """Create the CRD, the API ``echo`` at 0 replicas, its Deployment and its Service (whose
    target port is ``port``) as the operator would."""
    cluster.create(CRDS, custom_resource_definition())
    spec = {
        "predictor": {"type": "python", "path": "echo.py"},
        "autoscaling": {"min_replicas": 0, "max_replicas": 5, **autoscaling},
    }
    body = {"apiVersion": "cortex.dev/v1alpha1", "kind": "RealtimeAPI", "metadata": {"name": NAME}}
    resource = cluster.create(RAPIS, {**body, "spec": {**spec, "replicas": 0}})
    owner = Owner(name=NAME, namespace="default", uid=resource["metadata"]["uid"])
    api = parse_api_spec(NAME, spec)
    for child in render(api, owner, OperatorSettings(), replicas=0)[:2]:
        if child["kind"] == "Service":
            child["spec"]["ports"][0]["targetPort"] = port
        cluster.create(f"{child['apiVersion']}/{child['kind'].lower()}s", child)


def replicas(cluster: FakeCluster) -> int:
    found = cluster.get(RAPIS, NAME)
    assert found is not None
    return int(found["spec"].get("replicas", 0))


def scale_writes(cluster: FakeCluster) -> list[int]:
    """Each change of the API's spec.replicas, in order."""
    seen: list[int] = []
    previous = None
    for version in cluster.history(RAPIS, NAME):
        if version is None:
            continue
        value = version["spec"].get("replicas")
        if value != previous and previous is not None:
            seen.append(value)
        previous = value
    return seen


@contextlib.contextmanager
def backends(folder: Path, socks: list[socket.socket]) -> Iterator[list[Backend]]:
    """One runtime per bound socket; all stopped at the end."""
    started = [Backend(sock, folder / f"replica-{i}") for i, sock in enumerate(socks)]
    try:
        yield started
    finally:
        for backend in started:
            backend.stop()
