"""A fake cluster with the RealtimeAPI CRD, the operator embedded in a thread, CR factories.

The operator runs as its ServiceAccount (``OPERATOR_USER``), authorised by the RBAC objects the
Helm chart renders for a namespaced install (``operator.watchNamespace=default``), installed in
the fake; test code keeps acting as the cluster's admin. Every request the operator's identity
makes (and every permission admission checks for it) goes to the session's
:class:`OperatorCalls`, which ``test_zz_rbac`` compares with the RBAC files.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from cortex.k8s import OperatorSettings, custom_resource_definition
from cortex.operator import build_registry, kopf_settings, run_options
from tests import tools
from tests.fakeapi import FakeCluster, gateways, wait_for
from tests.fakeapi.access import Record
from tests.fakeapi.rbac import service_account
from tests.k8s.conftest import crd_manifest

RAPI = "cortex.dev/v1alpha1/realtimeapis"
DEPLOYMENTS = "apps/v1/deployments"
SERVICES = "v1/services"
INGRESSES = "networking.k8s.io/v1/ingresses"
HPAS = "autoscaling/v2/horizontalpodautoscalers"
SCALED_OBJECTS = "keda.sh/v1alpha1/scaledobjects"
HTTPROUTES = "gateway.networking.k8s.io/v1/httproutes"
GATEWAYS = "gateway.networking.k8s.io/v1/gateways"
CHILDREN = (DEPLOYMENTS, SERVICES, INGRESSES, HPAS)  # with INGRESS routing, the tests' default
# Routing settings: most tests look at the four children of ``ingress`` routing; the gateway
# tests attach their routes to a Gateway they create (``serve_gateway_api``).
INGRESS_ROUTING: dict[str, Any] = {"routing": "ingress", "ingress_class": "nginx"}
GATEWAY_ROUTING: dict[str, Any] = {"routing": "gateway", "gateway": ("gateway-system", "cortex")}
ROUTING_ENV = {"CORTEX_OPERATOR_ROUTING": "ingress", "CORTEX_OPERATOR_INGRESS_CLASS": "nginx"}
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "cortex"
OPERATOR_NAMESPACE = "cortex-system"
OPERATOR_USER = service_account(OPERATOR_NAMESPACE, "cortex-operator")
OPERATOR_TOKEN = "cortex-operator-token"
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
NAMESPACED, CLUSTER_WIDE = "namespaced", "cluster-wide"


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
    """The operator running ``kopf.operator`` in its own thread and event loop.

    ``watch_timeout``: the seconds each watch asks the server to last (kopf's
    ``server_timeout``), for tests of what happens when watches reconnect."""

    def __init__(
        self, settings: OperatorSettings, *, watch_timeout: float | None = None, **options: Any
    ) -> None:
        self._settings = settings
        self._watch_timeout = watch_timeout
        self._options = options
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)

    def _run(self) -> None:
        settings = self._settings
        options = kopf_settings(settings)
        if self._watch_timeout is not None:
            options.watching.server_timeout = self._watch_timeout
        try:
            asyncio.run(
                kopf.operator(
                    registry=build_registry(settings, **self._options),
                    settings=options,
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


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_chart(*sets: str) -> list[dict[str, Any]]:
    """``helm template`` of the chart, released in ``cortex-system``, with ``--set`` values."""
    args = [
        tools.require("helm"),
        "template",
        "cortex",
        str(CHART),
        "--namespace",
        OPERATOR_NAMESPACE,
    ]
    for value in sets:
        args += ["--set", value]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return documents(done.stdout)


def rbac_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's ServiceAccount, roles and bindings among manifests."""
    return [
        o for o in objects if o["kind"] in RBAC_KINDS and o["metadata"]["name"] == "cortex-operator"
    ]


@pytest.fixture(scope="session")
def namespaced_rbac() -> list[dict[str, Any]]:
    """The operator's RBAC as the chart renders it for ``operator.watchNamespace=default``."""
    return rbac_objects(render_chart("operator.watchNamespace=default"))


@dataclass
class OperatorCalls:
    """What the operator's identity asked for over the session, per way of watching."""

    requests: dict[str, list[Record]] = field(default_factory=dict)
    clusters: dict[str, int] = field(default_factory=dict)

    def add(self, mode: str, cluster: FakeCluster) -> None:
        mine = [
            r
            for r in cluster.requests() + cluster.admission_checks()
            if r.user == OPERATOR_USER and not (r.code == 403 and cluster.refusing)
        ]
        self.requests.setdefault(mode, []).extend(mine)
        self.clusters[mode] = self.clusters.get(mode, 0) + bool(mine)


@pytest.fixture(scope="session")
def operator_calls() -> OperatorCalls:
    return OperatorCalls()


def as_operator(cluster: FakeCluster, rbac: list[dict[str, Any]], folder: Path) -> Path:
    """Install the operator's namespace and ``rbac``; the kubeconfig of its ServiceAccount."""
    [namespace] = documents((ROOT / "operator" / "namespace.yaml").read_text())
    cluster.install([namespace, *rbac])
    cluster.add_user(OPERATOR_TOKEN, OPERATOR_USER)
    return cluster.kubeconfig_for(OPERATOR_TOKEN, folder / "operator-kubeconfig")


@contextlib.contextmanager
def operator_cluster(
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    rbac: list[dict[str, Any]],
    calls: OperatorCalls,
    mode: str,
) -> Iterator[FakeCluster]:
    """A fake API server with the RealtimeAPI CRD and ``rbac`` installed; ``KUBECONFIG`` (what
    kopf reads) authenticates as the operator's ServiceAccount; its calls go to ``calls``."""
    with FakeCluster(folder) as fake:
        fake.create(CRDS, custom_resource_definition())
        monkeypatch.setenv("KUBECONFIG", str(as_operator(fake, rbac, folder)))
        try:
            yield fake
        finally:
            calls.add(mode, fake)


@pytest.fixture
def cluster(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    namespaced_rbac: list[dict[str, Any]],
    operator_calls: OperatorCalls,
) -> Iterator[FakeCluster]:
    """The fake cluster of the operator tests, with the chart's namespaced RBAC."""
    with operator_cluster(
        tmp_path, monkeypatch, namespaced_rbac, operator_calls, NAMESPACED
    ) as fake:
        yield fake


def serve_gateway_api(cluster: FakeCluster, *, gateway: bool = True) -> None:
    """Serve the Gateway API CRDs (tests/fakeapi/crds) and, with ``gateway``, create the
    Gateway of ``GATEWAY_ROUTING``, taking routes from every namespace."""
    for crd in gateways.crds():
        cluster.create(CRDS, crd)
    if gateway:
        cluster.create("v1/namespaces", {"metadata": {"name": "gateway-system"}})
        cluster.create(GATEWAYS, gateway_object(), namespace="gateway-system")


def gateway_object() -> dict[str, Any]:
    listener = {
        "name": "http",
        "port": 80,
        "protocol": "HTTP",
        "allowedRoutes": {"namespaces": {"from": "All"}},
    }
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "cortex"},
        "spec": {"gatewayClassName": "example", "listeners": [listener]},
    }


@contextlib.contextmanager
def running(
    namespace: str | None = "default",
    settings: OperatorSettings | None = None,
    *,
    routing: dict[str, Any] | None = None,
    **options: Any,
) -> Iterator[Operator]:
    """The operator, watching ``namespace`` (None: all), for the duration of the block;
    ``settings``: other settings than the defaults (their namespace and routing are replaced);
    ``routing``: its routing settings (``INGRESS_ROUTING`` by default)."""
    chosen = dataclasses.replace(
        settings or OperatorSettings(), namespace=namespace, **(routing or INGRESS_ROUTING)
    )
    operator = Operator(chosen, **options).start()
    try:
        yield operator
    finally:
        operator.stop()


@pytest.fixture
def operator(cluster: FakeCluster) -> Iterator[Operator]:
    """The operator with quick retries and a 1 s stall threshold."""
    with running(retry_delay=0.2, slow_retry=0.5, stall_after=60.0) as op:
        yield op


def serve_keda(cluster: FakeCluster) -> None:
    """Make the fake serve KEDA's ScaledObjects (the test CRD: the fields cortex uses)."""
    cluster.create(CRDS, crd_manifest("scaledobjects.keda.sh"))


def status_of(cluster: FakeCluster, name: str, namespace: str | None = None) -> dict[str, Any]:
    body = cluster.get(RAPI, name, namespace) or {}
    return body.get("status") or {}


def wait_status(
    cluster: FakeCluster, name: str, word: str, timeout: float = 30, namespace: str | None = None
) -> dict[str, Any]:
    """Poll until the resource's ``status.status`` is ``word``; returns the status."""
    return wait_for(
        lambda: (s := status_of(cluster, name, namespace)).get("status") == word and s,
        timeout=timeout,
        what=f"status {word!r} of {name} (last: {status_of(cluster, name, namespace)})",
    )


def wait_children(
    cluster: FakeCluster, name: str, namespace: str | None = None
) -> dict[str, dict[str, Any]]:
    """Poll until all four children of an API exist; returns them by resource."""

    def children() -> dict[str, dict[str, Any]] | None:
        found = {res: cluster.get(res, f"api-{name}", namespace) for res in CHILDREN}
        return found if all(found.values()) else None  # type: ignore[return-value]

    return wait_for(children, what=f"the children of {name}")


def events_of(cluster: FakeCluster, name: str) -> list[dict[str, Any]]:
    return [
        e for e in cluster.select("v1/events") if e.get("involvedObject", {}).get("name") == name
    ]


def kubectl(
    cluster: FakeCluster, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The real kubectl against the fake, as its admin; fails the test on an error unless
    ``check`` is False."""
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    result = subprocess.run(
        [tools.require("kubectl"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result
