"""The operator under API server faults, through the fake API server: it retries with backoff,
converges, makes no duplicates and keeps nothing for what is gone.

Faults are injected for the operator's identity only (its ServiceAccount), so the test's own
reads and writes (as the admin) go through. The operator runs with its real backoff (1 s,
doubling); each case counts the operator's requests in the fake's log: a retry loop would show
as many more requests than faults injected.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cortex.contracts import LABEL_API_NAME
from cortex.k8s import OperatorSettings
from cortex.operator.state import State
from tests.fakeapi import FakeCluster, wait_for
from tests.fakeapi.access import Record
from tests.operator.conftest import (
    CHILDREN,
    DEPLOYMENTS,
    HPAS,
    INGRESS_ROUTING,
    NAMESPACED,
    OPERATOR_USER,
    RAPI,
    OperatorCalls,
    events_of,
    operator_cluster,
    rbac_objects,
    render_chart,
    resource,
    running,
    status_of,
)
from tests.operator.process import OperatorProcess
from tests.reliability.conftest import Figures

pytestmark = pytest.mark.timeout(120)

Size = Callable[[Any, Any], Any]
APIS = ("alpha", "beta", "gamma")
WRITES = ("create", "update", "patch", "delete")
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"code": 500},
    "409": {"code": 409},
    "429": {"code": 429, "retry_after": 2},
}


@pytest.fixture(scope="module")
def rbac() -> list[dict[str, Any]]:
    return rbac_objects(render_chart("operator.watchNamespace=default"))


@pytest.fixture
def cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rbac: list[dict[str, Any]]
) -> Iterator[FakeCluster]:
    """The operator tests' cluster: the CRD, the chart's namespaced RBAC, ``KUBECONFIG`` as the
    operator's ServiceAccount."""
    with operator_cluster(tmp_path, monkeypatch, rbac, OperatorCalls(), NAMESPACED) as fake:
        yield fake


# --- what a case checks --------------------------------------------------------------------


def operator_requests(cluster: FakeCluster, since: int = 0) -> list[Record]:
    return [r for r in cluster.requests()[since:] if r.user == OPERATOR_USER]


def attempts(requests: list[Record], verb: str, resource: str, name: str) -> list[Record]:
    return [r for r in requests if (r.verb, r.resource, r.name) == (verb, resource, name)]


def counts(cluster: FakeCluster, name: str) -> dict[str, int]:
    """How many objects of each child resource carry the API's label."""
    return {res: len(cluster.select(res, labels=f"{LABEL_API_NAME}={name}")) for res in CHILDREN}


def converged(cluster: FakeCluster, name: str, generation: int) -> bool:
    """One child of each kind, and a status of this generation."""
    status = status_of(cluster, name)
    return status.get("observedGeneration") == generation and set(
        counts(cluster, name).values()
    ) == {1}


def wait_converged(cluster: FakeCluster, names: tuple[str, ...], generation: int = 1) -> None:
    for name in names:
        wait_for(
            lambda name=name: converged(cluster, name, generation),  # type: ignore[misc]
            timeout=60,
            what=f"{name} at generation {generation}: {counts(cluster, name)}, "
            f"status {status_of(cluster, name)}",
        )


def duplicates(cluster: FakeCluster, names: tuple[str, ...]) -> int:
    return sum(n - 1 for name in names for n in counts(cluster, name).values() if n > 1)


def assert_no_event_flood(cluster: FakeCluster, names: tuple[str, ...]) -> None:
    """Each status change is one Event: none posted twice."""
    for name in names:
        messages = [(e["reason"], e["message"]) for e in events_of(cluster, name)]
        assert len(messages) == len(set(messages)), messages
        assert len(messages) <= 3, messages


def deploy(cluster: FakeCluster, names: tuple[str, ...], *, update: bool = False) -> None:
    """Create the APIs, or change their predictor's config (a new pod template)."""
    for name in names:
        if update:
            cluster.patch(RAPI, name, {"spec": {"predictor": {"config": {"threshold": 0.9}}}})
        else:
            cluster.create(RAPI, resource(name))


# --- errors and throttling -------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["create", "update"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_failed_writes_are_retried_with_backoff_until_they_converge(
    cluster: FakeCluster, figures: Figures, size: Size, fault: str, phase: str
) -> None:
    times = size(2, 4)  # per API: the backoff of 1 s doubles, 2 faults cost 3 s
    generation = 2 if phase == "update" else 1
    with running():
        if phase == "update":
            deploy(cluster, APIS)
            wait_converged(cluster, APIS)
        mark = len(cluster.requests())
        for name in APIS:
            cluster.inject(
                "patch",
                "deployments.apps",
                name=f"api-{name}",
                user=OPERATOR_USER,
                times=times,
                **FAULTS[fault],
            )
        deploy(cluster, APIS, update=phase == "update")
        wait_converged(cluster, APIS, generation)
        seen = operator_requests(cluster, mark)

    shortest = []
    for name in APIS:
        tries = attempts(seen, "patch", "deployments", f"api-{name}")
        assert [r.code for r in tries][:times] == [FAULTS[fault]["code"]] * times
        assert len(tries) <= times + 2, f"a retry loop: {len(tries)} applies for {times} faults"
        gaps = [b.at - a.at for a, b in itertools.pairwise(tries)][:times]
        least = FAULTS[fault].get("retry_after", 1.0)
        assert all(gap >= least * 0.9 for gap in gaps), f"retried too soon: {gaps}"
        shortest.append(min(gaps))
    writes = [r for r in seen if r.verb in WRITES and r.resource != "events"]
    assert len(writes) <= len(APIS) * (times + 8), f"{len(writes)} writes"
    assert duplicates(cluster, APIS) == 0
    assert_no_event_flood(cluster, APIS)
    figures.record(
        f"{fault} on Deployment writes ({phase})",
        sent=times * len(APIS),
        lost=duplicates(cluster, APIS),
        apis=len(APIS),
        applies=len([r for r in seen if r.resource == "deployments" and r.verb == "patch"]),
        shortest_retry_s=round(min(shortest), 2),
    )


def test_failed_status_writes_are_retried_and_posted_once(
    cluster: FakeCluster, figures: Figures, size: Size
) -> None:
    times = size(2, 4)
    with running():
        mark = len(cluster.requests())
        for name in APIS:
            cluster.inject(
                "patch",
                "realtimeapis.cortex.dev/status",
                name=name,
                user=OPERATOR_USER,
                code=500,
                times=times,
            )
        deploy(cluster, APIS)
        wait_converged(cluster, APIS)
        seen = operator_requests(cluster, mark)

    for name in APIS:
        tries = [r for r in attempts(seen, "patch", "realtimeapis", name) if r.subresource]
        assert len(tries) <= times + 3, f"{len(tries)} status writes for {times} faults"
    assert_no_event_flood(cluster, APIS)
    figures.record("500 on status writes", sent=times * len(APIS), lost=duplicates(cluster, APIS))


# --- a slow server ---------------------------------------------------------------------------


def test_a_slow_server_delays_but_does_not_duplicate_or_retry(
    cluster: FakeCluster, figures: Figures, size: Size
) -> None:
    delay = size(0.5, 1.0)
    with running():
        mark = len(cluster.requests())
        slow = cluster.inject(user=OPERATOR_USER, delay=delay)
        deploy(cluster, APIS)
        wait_converged(cluster, APIS)
        for name in APIS:
            cluster.patch(RAPI, name, {"spec": {"autoscaling": {"max_replicas": 7}}})
        wait_converged(cluster, APIS, 2)
        seen = operator_requests(cluster, mark)
        cluster.heal()

    assert not [r for r in seen if r.code >= 500], "nothing timed out"
    for name in APIS:  # one apply per child and generation (a spec change writes each child)
        assert len(attempts(seen, "patch", "deployments", f"api-{name}")) == 2
        assert len(attempts(seen, "patch", "horizontalpodautoscalers", f"api-{name}")) == 2
        assert cluster.get(HPAS, f"api-{name}")["spec"]["maxReplicas"] == 7
    assert duplicates(cluster, APIS) == 0
    assert_no_event_flood(cluster, APIS)
    figures.record(
        f"slow server ({delay} s per request)",
        sent=slow.hits,
        lost=duplicates(cluster, APIS),
    )


# --- watches ---------------------------------------------------------------------------------


def test_dropped_watches_resume_where_they_were(
    cluster: FakeCluster, figures: Figures, size: Size
) -> None:
    rounds = size(3, 10)
    with running():
        deploy(cluster, APIS)
        wait_converged(cluster, APIS)
        mark = len(cluster.requests())
        dropped = 0
        for replicas in range(2, 2 + rounds):
            wait_for(lambda: cluster.call(lambda: len(cluster.fake.watches)) >= 6, what="watches")
            dropped += cluster.disconnect_watches()
            for name in APIS:
                cluster.patch(RAPI, name, {"spec": {"autoscaling": {"max_replicas": replicas}}})
            for name in APIS:
                wait_for(
                    lambda name=name, replicas=replicas: (  # type: ignore[misc]
                        cluster.get(HPAS, f"api-{name}")["spec"]["maxReplicas"] == replicas
                    ),
                    what=f"max_replicas {replicas} for {name} after the watches dropped",
                )
        seen = operator_requests(cluster, mark)

    lists = [r for r in seen if r.verb == "list"]
    assert lists == [], "a dropped watch resumes from its resourceVersion: no relisting"
    assert duplicates(cluster, APIS) == 0
    figures.record("watch connections dropped", sent=dropped, lost=duplicates(cluster, APIS))


def test_expired_watches_relist_and_catch_up_with_what_they_missed(
    cluster: FakeCluster, figures: Figures
) -> None:
    state = State(OperatorSettings(namespace="default", **INGRESS_ROUTING))
    with running(state=state):
        deploy(cluster, APIS)
        wait_converged(cluster, APIS)
        # Hold the operator's watches while the cluster changes, then expire where they were.
        cluster.inject("watch", user=OPERATOR_USER, code=500, seconds=3)
        cluster.disconnect_watches()
        cluster.patch(RAPI, "alpha", {"spec": {"autoscaling": {"max_replicas": 9}}})
        cluster.delete(DEPLOYMENTS, "api-beta")
        cluster.delete(RAPI, "gamma")
        cluster.compact()

        wait_for(
            lambda: cluster.get(HPAS, "api-alpha")["spec"]["maxReplicas"] == 9,
            what="the change made while the watches were down",
        )
        wait_for(lambda: cluster.get(DEPLOYMENTS, "api-beta"), what="the deleted child back")
        wait_for(lambda: state.tracked() == 2, what=f"nothing kept for gamma ({state.tracked()})")
    assert counts(cluster, "gamma") == dict.fromkeys(CHILDREN, 0)
    assert duplicates(cluster, APIS) == 0
    figures.record("watches expired (410) while the cluster changed", sent=3, lost=0)


def test_an_api_deleted_unseen_is_forgotten_not_recreated_in_a_loop(
    cluster: FakeCluster, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "cortex.operator")
    state = State(OperatorSettings(namespace="default", **INGRESS_ROUTING))
    with running(state=state):
        deploy(cluster, ("lonely",))
        wait_converged(cluster, ("lonely",))
        # The API's watch is down (and expires) while it is deleted; the children's watches see
        # the garbage collector delete them, and wake an API the operator still believes in.
        cluster.inject("watch", "realtimeapis.cortex.dev", user=OPERATOR_USER, code=500, seconds=3)
        assert cluster.disconnect_watches("realtimeapis.cortex.dev") == 1
        mark = len(cluster.requests())
        cluster.delete(RAPI, "lonely")
        cluster.compact()

        wait_for(lambda: state.tracked() == 0, what=f"nothing kept ({state.tracked()} APIs)")
        seen = operator_requests(cluster, mark)
    creates = [r for r in seen if r.verb == "patch" and r.code == 201]
    assert creates == [], "no child re-created for an API that is gone"
    assert counts(cluster, "lonely") == dict.fromkeys(CHILDREN, 0)
    about = [r for r in caplog.records if "lonely" in r.getMessage()]
    assert [r for r in about if "no watch event said so; forgotten" in r.getMessage()]
    warnings = [r.getMessage() for r in about if r.levelno > logging.INFO]
    assert len(warnings) <= 2, warnings
    figures.record("an API deleted while its watch was down", sent=1, lost=len(creates))


# --- the operator killed, an API deleted, mid-reconcile ------------------------------------


def test_an_operator_killed_during_a_held_write_converges_after_a_restart(
    cluster: FakeCluster, figures: Figures, tmp_path: Path
) -> None:
    kubeconfig = Path(os.environ["KUBECONFIG"])
    held = cluster.inject("patch", "deployments.apps", user=OPERATOR_USER, delay=3, times=1)
    with OperatorProcess(kubeconfig, tmp_path / "first.log") as first:
        cluster.create(RAPI, resource("killed"))
        wait_for(lambda: held.hits == 1, what="the Deployment's write held")
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    landed = wait_for(lambda: cluster.get(DEPLOYMENTS, "api-killed"), what="the write to land")
    mark = len(cluster.requests())

    with OperatorProcess(kubeconfig, tmp_path / "second.log"):
        wait_converged(cluster, ("killed",))
        seen = operator_requests(cluster, mark)

    assert cluster.get(DEPLOYMENTS, "api-killed")["metadata"]["uid"] == landed["metadata"]["uid"]
    assert attempts(seen, "patch", "deployments", "api-killed") == [], "it had landed"
    assert duplicates(cluster, ("killed",)) == 0
    assert_no_event_flood(cluster, ("killed",))
    figures.record("operator SIGKILLed during a held write", sent=1, lost=0)


def test_an_api_deleted_while_reconciled_leaves_nothing(
    cluster: FakeCluster, figures: Figures, size: Size, caplog: pytest.LogCaptureFixture
) -> None:
    names = tuple(f"doomed{i}" for i in range(size(2, 5)))
    state = State(OperatorSettings(namespace="default", **INGRESS_ROUTING))
    with running(state=state):
        slow = cluster.inject("patch", user=OPERATOR_USER, delay=1.0)
        for name in names:
            cluster.create(RAPI, resource(name))
        wait_for(lambda: slow.hits >= len(names), what="the first writes held")
        for name in names:
            cluster.delete(RAPI, name)
        for name in names:
            wait_for(
                lambda name=name: not any(counts(cluster, name).values()),  # type: ignore[misc]
                what=f"the children of {name} collected: {counts(cluster, name)}",
            )
        wait_for(lambda: state.tracked() == 0, what=f"nothing kept ({state.tracked()} APIs)")
        cluster.heal()
    for name in names:  # no error loop
        warnings = [r.getMessage() for r in caplog.records if r.levelno > logging.INFO]
        assert len([w for w in warnings if name in w]) <= 2, warnings
    figures.record("APIs deleted while a slow server held their writes", sent=len(names), lost=0)
