"""The service proxy and pod logs answer as a kube-apiserver's do (over real HTTP)."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import tools
from tests.fakeapi import FakeCluster

pytestmark = pytest.mark.timeout(60)

SVC = "/api/v1/namespaces/default/services"
PODS = "/api/v1/namespaces/default/pods"


class Echo(http.server.BaseHTTPRequestHandler):
    """An upstream that answers what it was asked, and streams on ``/stream``."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one\n", b"two\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")
            return
        seen = {
            "method": self.command,
            "path": self.path,
            "body": body,
            "test": self.headers.get("X-Test"),
            "auth": self.headers.get("Authorization"),
        }
        payload = json.dumps(seen).encode()
        self.send_response(418 if "teapot" in self.path else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "yes")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_(cluster: FakeCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        yield client


def service(name: str = "web") -> dict[str, Any]:
    ports = [{"name": "http", "port": 8080, "targetPort": 8888}]
    return {"metadata": {"name": name}, "spec": {"selector": {"app": name}, "ports": ports}}


def pod(name: str, *containers: str) -> dict[str, Any]:
    spec = {"containers": [{"name": c, "image": f"{c}:1"} for c in containers]}
    return {"metadata": {"name": name}, "spec": spec}


def test_the_service_proxy_forwards_to_the_routed_upstream(
    cluster: FakeCluster, http_: httpx.Client, upstream: str
) -> None:
    assert http_.get(f"{SVC}/web:8080/proxy/").status_code == 404
    http_.post(SVC, json=service())
    unrouted = http_.get(f"{SVC}/web:8080/proxy/predict")
    assert unrouted.status_code == 503
    assert unrouted.json()["message"] == 'no endpoints available for service "web"'
    assert unrouted.json()["reason"] == "ServiceUnavailable"
    cluster.route_service("default", "web", 8080, upstream)
    cluster.add_user("for-the-apiserver", "someone", groups=["system:masters"])
    answer = http_.post(
        f"{SVC}/web:8080/proxy/predict",
        params={"debug": "1"},
        content=b'{"x": 1}',
        headers={"X-Test": "kept", "Authorization": "Bearer for-the-apiserver"},
    )
    seen = answer.json()
    assert answer.status_code == 200 and answer.headers["X-Upstream"] == "yes"
    assert seen["method"] == "POST" and seen["path"] == "/predict?debug=1"
    assert seen["body"] == '{"x": 1}' and seen["test"] == "kept" and seen["auth"] is None
    for service_id in ("web", "web:http", "http:web:8080"):
        assert http_.get(f"{SVC}/{service_id}/proxy/a/b").json()["path"] == "/a/b"
    assert http_.delete(f"{SVC}/web/proxy/x").json()["method"] == "DELETE"
    assert http_.get(f"{SVC}/web/proxy/teapot").status_code == 418
    with http_.stream("GET", f"{SVC}/web/proxy/stream") as stream:
        assert list(stream.iter_lines()) == ["one", "two"]
    cluster.route_service("default", "web", 8080, "http://127.0.0.1:9")  # nothing listens
    unreachable = http_.get(f"{SVC}/web/proxy/")
    assert unreachable.status_code == 503
    assert unreachable.json()["message"].startswith("error trying to reach service: ")


def test_kubectl_reaches_a_service_through_the_proxy(
    cluster: FakeCluster, http_: httpx.Client, upstream: str
) -> None:
    kubectl_path = tools.require("kubectl")
    http_.post(SVC, json=service())
    cluster.route_service("default", "web", "http", upstream)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    raw = f"{SVC}/web:http/proxy/healthz"
    done = subprocess.run(
        [kubectl_path, "get", "--raw", raw], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"] == "/healthz"


def test_pod_logs_serve_appended_lines_with_the_usual_options(
    cluster: FakeCluster, http_: httpx.Client
) -> None:
    assert http_.get(f"{PODS}/nope/log").status_code == 404
    with pytest.raises(LookupError):
        cluster.append_log("default", "nope", "lost")
    http_.post(PODS, json=pod("one", "app"))
    http_.post(PODS, json=pod("two", "app", "side"))
    for line in ("a", "b", "c"):
        cluster.append_log("default", "one", line)
    cluster.append_log("default", "two", "from side", container="side")
    assert http_.get(f"{PODS}/one/log").text == "a\nb\nc\n"
    assert http_.get(f"{PODS}/one/log", params={"tailLines": "2"}).text == "b\nc\n"
    assert http_.get(f"{PODS}/one/log", params={"sinceSeconds": "60"}).text == "a\nb\nc\n"
    stamped = http_.get(f"{PODS}/one/log", params={"timestamps": "true"}).text.splitlines()
    assert stamped[0].endswith("Z a") and stamped[0][:4].isdigit()
    bad = http_.get(f"{PODS}/one/log", params={"container": "nope"})
    assert (
        bad.status_code == 400
        and bad.json()["message"] == "container nope is not valid for pod one"
    )
    ambiguous = http_.get(f"{PODS}/two/log")
    assert ambiguous.status_code == 400
    assert ambiguous.json()["message"] == (
        "a container name must be specified for pod two, choose one of: [app side]"
    )
    assert http_.get(f"{PODS}/two/log", params={"container": "side"}).text == "from side\n"


def test_following_a_log_streams_new_lines_until_the_pod_is_deleted(
    cluster: FakeCluster, http_: httpx.Client
) -> None:
    http_.post(PODS, json=pod("one", "app"))
    cluster.append_log("default", "one", "before")
    lines: list[str] = []

    def follow() -> None:
        params = {"follow": "true"}
        with httpx.stream("GET", f"{cluster.url}{PODS}/one/log", params=params, timeout=10) as s:
            lines.extend(s.iter_lines())

    reader = threading.Thread(target=follow)
    reader.start()
    deadline = time.monotonic() + 5
    while not lines and time.monotonic() < deadline:
        time.sleep(0.02)
    cluster.append_log("default", "one", "after")
    while len(lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    http_.delete(f"{PODS}/one")
    reader.join(5)
    assert not reader.is_alive() and lines == ["before", "after"]


def test_kubectl_logs(cluster: FakeCluster, http_: httpx.Client) -> None:
    kubectl_path = tools.require("kubectl")
    http_.post(PODS, json=pod("one", "app"))
    cluster.append_log("default", "one", "hello")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    done = subprocess.run(
        [kubectl_path, "logs", "one", "--tail=1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello\n"
