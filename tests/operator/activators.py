"""A stand-in for the activators, for the operator's tests: their /metrics with the counts a test
sets, behind a selector-less Service ``cortex-activator`` whose EndpointSlice points at it."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

from tests.fakeapi import FakeCluster


class Activators(http.server.ThreadingHTTPServer):
    """Serves /metrics as an activator would, with the counts a test sets."""

    def __init__(self, namespace: str = "default", api: str = "sleepy") -> None:
        self.namespace, self.api = namespace, api
        self.held = 0
        self.requests = 0
        self.cold_starts: tuple[int, float] = (0, 0.0)
        self.scrapes = 0
        super().__init__(("127.0.0.1", 0), _Metrics)

    def text(self) -> str:
        labels = f'api_namespace="{self.namespace}",api_name="{self.api}"'
        count, total = self.cold_starts
        return (
            f"cortex_activator_in_flight_requests{{{labels}}} {self.held}\n"
            f'cortex_activator_requests_total{{{labels},status_code="2XX"}} {self.requests}\n'
            f"cortex_cold_start_seconds_count{{{labels}}} {count}\n"
            f"cortex_cold_start_seconds_sum{{{labels}}} {total}\n"
        )


class _Metrics(http.server.BaseHTTPRequestHandler):
    server: Activators

    def do_GET(self) -> None:
        body = self.server.text().encode()
        self.server.scrapes += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving_activators(
    cluster: FakeCluster, namespace: str = "default", api: str = "sleepy"
) -> Iterator[Activators]:
    server = Activators(namespace, api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    service = {"name": "http", "port": 8888}
    cluster.create(
        "v1/services",
        {"metadata": {"name": "cortex-activator"}, "spec": {"ports": [service]}},
        namespace=namespace,
    )
    cluster.create(
        "discovery.k8s.io/v1/endpointslices",
        {
            "metadata": {
                "name": "cortex-activator-1",
                "labels": {"kubernetes.io/service-name": "cortex-activator"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        },
        namespace=namespace,
    )
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
