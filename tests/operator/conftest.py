"""A fake cluster with the RealtimeAPI CRD, the operator embedded in a thread, CR factories."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from cortex.k8s import OperatorSettings, custom_resource_definition
from cortex.operator import build_registry, kopf_settings, run_options
from tests.fakeapi import FakeCluster, wait_for

RAPI = "cortex.dev/v1alpha1/realtimeapis"
DEPLOYMENTS = "apps/v1/deployments"
SERVICES = "v1/services"
INGRESSES = "networking.k8s.io/v1/ingresses"
HPAS = "autoscaling/v2/horizontalpodautoscalers"
CHILDREN = (DEPLOYMENTS, SERVICES, INGRESSES, HPAS)
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"


def resource(name: str, **spec: Any) -> dict[str, Any]:
    """A RealtimeAPI resource; ``spec`` sections are merged over a minimal predictor."""
    body = {"predictor": {"type": "python", "path": "predictor.py", **spec.pop("predictor", {})}}
    body.update(spec)
    return {
        "apiVersion": "cortex.dev/v1alpha1",
        "kind": "RealtimeAPI",
        "metadata": {"name": name},
        "spec": body,
    }


class Operator:
    """The operator running ``kopf.operator`` in its own thread and event loop."""

    def __init__(self, settings: OperatorSettings, **options: Any) -> None:
        self._settings = settings
        self._options = options
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)

    def _run(self) -> None:
        settings = self._settings
        try:
            asyncio.run(
                kopf.operator(
                    registry=build_registry(settings, **self._options),
                    settings=kopf_settings(settings),
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    **run_options(settings),
                )
            )
        except BaseException as exc:  # reported by stop()
            self._errors.append(exc)

    def start(self) -> Operator:
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError(f"the operator did not start: {self._errors}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the operator did not stop"
        assert not self._errors, self._errors


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    """A fake API server with the RealtimeAPI CRD; ``KUBECONFIG`` points at it."""
    with FakeCluster(tmp_path) as fake:
        fake.create(CRDS, custom_resource_definition())
        monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig))
        yield fake


@contextlib.contextmanager
def running(**options: Any) -> Iterator[Operator]:
    """The operator, watching namespace ``default``, for the duration of the block."""
    operator = Operator(OperatorSettings(namespace="default"), **options).start()
    try:
        yield operator
    finally:
        operator.stop()


@pytest.fixture
def operator(cluster: FakeCluster) -> Iterator[Operator]:
    """The operator with quick retries and a 1 s stall threshold."""
    with running(retry_delay=0.2, slow_retry=0.5, stall_after=60.0) as op:
        yield op


def status_of(cluster: FakeCluster, name: str) -> dict[str, Any]:
    body = cluster.get(RAPI, name) or {}
    return body.get("status") or {}


def wait_status(cluster: FakeCluster, name: str, word: str, timeout: float = 30) -> dict[str, Any]:
    """Poll until the resource's ``status.status`` is ``word``; returns the status."""
    return wait_for(
        lambda: (s := status_of(cluster, name)).get("status") == word and s,
        timeout=timeout,
        what=f"status {word!r} of {name} (last: {status_of(cluster, name)})",
    )


def wait_children(cluster: FakeCluster, name: str) -> dict[str, dict[str, Any]]:
    """Poll until all four children of an API exist; returns them by resource."""

    def children() -> dict[str, dict[str, Any]] | None:
        found = {res: cluster.get(res, f"api-{name}") for res in CHILDREN}
        return found if all(found.values()) else None  # type: ignore[return-value]

    return wait_for(children, what=f"the children of {name}")


def events_of(cluster: FakeCluster, name: str) -> list[dict[str, Any]]:
    return [
        e for e in cluster.select("v1/events") if e.get("involvedObject", {}).get("name") == name
    ]
