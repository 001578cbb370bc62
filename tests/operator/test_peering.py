"""Two operator processes with kopf peering on one cluster: one reconciles, the other takes over.

Each process talks through its own :class:`Recorder`, so what each one wrote is known. The
peering CRDs come from ``operator/peering-crds.yaml``; the cluster-wide peering object from
``operator/peering.yaml``, the namespaced one as the chart renders it for one watched namespace.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakeapi import FakeCluster, wait_for
from tests.k8s.conftest import OPERATOR_DIR
from tests.operator.conftest import CRDS, RAPI, resource, wait_children
from tests.operator.process import OperatorProcess
from tests.operator.recorder import Recorder

pytestmark = pytest.mark.slow

PEERINGS = "kopf.dev/v1/kopfpeerings"
CLUSTER_PEERINGS = "kopf.dev/v1/clusterkopfpeerings"


def create_deployment(api: str) -> tuple[str, str]:
    """The server-side apply that creates an API's Deployment."""
    return ("PATCH", f"/apis/apps/v1/namespaces/default/deployments/api-{api}")


def _documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((OPERATOR_DIR / name).read_text()) if doc]


@pytest.fixture
def peering(cluster: FakeCluster) -> FakeCluster:
    """The cluster with kopf's peering CRDs and a peering object ``cortex`` of each scope."""
    for crd in _documents("peering-crds.yaml"):
        cluster.create(CRDS, crd)
    [cluster_peering] = [d for d in _documents("peering.yaml") if d["kind"] == "ClusterKopfPeering"]
    cluster.create(CLUSTER_PEERINGS, cluster_peering)
    namespaced = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": "cortex"},
    }
    cluster.create(PEERINGS, namespaced)
    return cluster


class Replicas:
    """Operator processes peering through ``cortex``, each behind its own recorder."""

    def __init__(self, cluster: FakeCluster, folder: Path, env: dict[str, str]) -> None:
        self.cluster = cluster
        self._folder = folder
        self._env = {"CORTEX_OPERATOR_PEERING": "cortex", **env}
        self._recorders: dict[int, Recorder] = {}
        self._exit = contextlib.ExitStack()

    def start(self, priority: int) -> OperatorProcess:
        kubeconfig = self._folder / f"{priority}.kubeconfig"
        recorder = self._exit.enter_context(Recorder(self.cluster.url, kubeconfig))
        self._recorders[priority] = recorder
        log = self._folder / f"{priority}.log"
        args = ("--priority", str(priority), "--verbose")
        return self._exit.enter_context(OperatorProcess(kubeconfig, log, *args, env=self._env))

    def writes(self, priority: int) -> list[tuple[str, str]]:
        """What that replica changed on the cluster, besides its keep-alives."""
        return self._recorders[priority].writes(besides="kopfpeerings")

    def close(self) -> None:
        self._exit.close()


@pytest.fixture
def replicas(peering: FakeCluster, tmp_path: Path) -> Iterator[Callable[..., Replicas]]:
    """``replicas(env)``: a group of replicas with these extra environment variables."""
    with contextlib.ExitStack() as groups:

        def make(env: dict[str, str] | None = None) -> Replicas:
            group = Replicas(peering, tmp_path, env or {})
            groups.callback(group.close)
            return group

        yield make


def peers(cluster: FakeCluster, resource_: str) -> dict[int, str]:
    """The live peers of ``cortex``: identity by priority (from kopf's keep-alives)."""
    status = (cluster.get(resource_, "cortex") or {}).get("status") or {}
    return {entry["priority"]: identity for identity, entry in status.items() if entry}


def test_only_the_highest_priority_reconciles_and_a_stopped_one_hands_over_at_once(
    replicas: Callable[..., Replicas],
) -> None:
    group = replicas()
    cluster = group.cluster
    active = group.start(priority=2)
    group.start(priority=1)
    wait_for(lambda: set(peers(cluster, PEERINGS)) == {1, 2}, what="both replicas peering")

    cluster.create(RAPI, resource("iris"))
    wait_children(cluster, "iris")

    assert create_deployment("iris") in group.writes(2)
    assert group.writes(1) == []

    assert active.stop(signal.SIGTERM) == 0
    wait_for(lambda: set(peers(cluster, PEERINGS)) == {1}, what="the stopped replica leaving")
    # The default 60 s lifetime is longer than wait_for waits: a clean stop hands over at once.
    cluster.create(RAPI, resource("iris2"))
    wait_children(cluster, "iris2")
    assert create_deployment("iris2") in group.writes(1)


def test_a_killed_active_replica_is_replaced_when_its_peering_lifetime_ends(
    replicas: Callable[..., Replicas],
) -> None:
    group = replicas({"CORTEX_OPERATOR_NAMESPACE": "", "CORTEX_OPERATOR_PEERING_LIFETIME": "2"})
    cluster = group.cluster
    active = group.start(priority=2)
    group.start(priority=1)
    wait_for(lambda: set(peers(cluster, CLUSTER_PEERINGS)) == {1, 2}, what="both peering")
    assert peers(cluster, PEERINGS) == {}, "a cluster-wide operator peers cluster-wide"

    assert active.stop(signal.SIGKILL) == -signal.SIGKILL
    assert 2 in peers(cluster, CLUSTER_PEERINGS), "a killed replica says no goodbye"
    cluster.create(RAPI, resource("iris"))
    wait_children(cluster, "iris")

    assert create_deployment("iris") in group.writes(1)
