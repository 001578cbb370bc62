"""The operator scales an idle API with ``min_replicas: 0`` to zero, on a clock the test moves:
it reads the activators' counts (a stub serving their /metrics), and writes 0 replicas with a
precondition after exactly ``scale_to_zero_after``."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from cortex.k8s import Autoscaler, OperatorSettings
from cortex.operator.state import State
from tests.fakeapi import FakeCluster, wait_for
from tests.operator.activators import Activators, serving_activators
from tests.operator.conftest import (
    RAPI,
    SCALED_OBJECTS,
    Operator,
    resource,
    serve_keda,
    wait_status,
)

pytestmark = pytest.mark.timeout(120)
SETTINGS = OperatorSettings(
    namespace="default",
    routing="ingress",
    ingress_class="nginx",
    activator=("default", "cortex-activator"),
)
ZERO = {"min_replicas": 0, "scale_to_zero_after": "5m"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def activators(cluster: FakeCluster) -> Iterator[Activators]:
    with serving_activators(cluster) as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> State:
    return State(SETTINGS, retry_delay=0.2, clock=clock, idle_poll=0.05)


@pytest.fixture
def sleeper(cluster: FakeCluster, state: State, activators: Activators) -> Iterator[Operator]:
    operator = Operator(SETTINGS, state=state, retry_delay=0.2).start()
    try:
        yield operator
    finally:
        operator.stop()


def replicas(cluster: FakeCluster) -> Any:
    return (cluster.get(RAPI, "sleepy") or {}).get("spec", {}).get("replicas")


@contextlib.contextmanager
def keda_operator(clock: Clock) -> Iterator[State]:
    """An operator in KEDA mode on the test's clock (start it after the faults it must meet)."""
    settings = dataclasses.replace(SETTINGS, autoscaler=Autoscaler.KEDA)
    state = State(settings, retry_delay=0.2, clock=clock, idle_poll=0.05)
    operator = Operator(settings, state=state, retry_delay=0.2).start()
    try:
        yield state
    finally:
        operator.stop()


def passes(state: State, more: int) -> None:
    """Wait until the operator has looked at the API ``more`` more times."""
    target = state.idle.checks + more
    wait_for(lambda: state.idle.checks >= target, what=f"{more} more idle checks")


def test_idle_at_4_59_no_write_at_5_00_scaled_to_zero(
    cluster: FakeCluster, state: State, clock: Clock, sleeper: Operator
) -> None:
    cluster.create(RAPI, resource("sleepy", autoscaling=ZERO))
    passes(state, 1)  # idle from now on

    clock.now += 299
    passes(state, 3)
    assert replicas(cluster) is None  # never written: still init_replicas (1)
    clock.now += 1

    wait_for(lambda: replicas(cluster) == 0, what="the scale to zero")
    found = wait_status(cluster, "sleepy", "scaled to zero")
    [asleep] = [c for c in found["conditions"] if c["type"] == "ScaledToZero"]
    assert asleep["status"] == "True"
    deployment = wait_for(
        lambda: (
            (d := cluster.get("apps/v1/deployments", "api-sleepy"))
            and d["spec"]["replicas"] == 0
            and d
        ),
        what="the Deployment at 0",
    )
    assert deployment["spec"]["replicas"] == 0


def test_a_request_or_a_held_one_starts_the_idle_time_again(
    cluster: FakeCluster, state: State, clock: Clock, activators: Activators, sleeper: Operator
) -> None:
    cluster.create(RAPI, resource("sleepy", autoscaling=ZERO))
    passes(state, 1)

    clock.now += 200
    activators.requests += 1  # one request came and went
    passes(state, 2)
    clock.now += 200
    activators.held = 1  # one held at 400 s
    passes(state, 2)
    clock.now += 299
    activators.held = 0
    passes(state, 3)

    assert replicas(cluster) is None  # 299 s since the last activity: not yet


def test_an_api_whose_activators_cannot_be_read_is_never_scaled_down(
    cluster: FakeCluster, state: State, clock: Clock, activators: Activators, sleeper: Operator
) -> None:
    cluster.create(RAPI, resource("sleepy", autoscaling=ZERO))
    passes(state, 1)
    activators.shutdown()
    activators.server_close()

    clock.now += 3600
    passes(state, 3)

    assert replicas(cluster) is None


def test_the_status_tells_of_the_last_wake_and_its_cold_start(
    cluster: FakeCluster, state: State, clock: Clock, activators: Activators, sleeper: Operator
) -> None:
    body = resource("sleepy", autoscaling=ZERO)
    body["spec"]["replicas"] = 0
    cluster.create(RAPI, body)
    wait_status(cluster, "sleepy", "scaled to zero")
    # The operator's first look at the API asleep counts the cold starts so far (none): one
    # the test set before that look would count as old.
    wait_for(lambda: activators.scrapes >= 1, what="the look at the API asleep")

    activators.cold_starts = (1, 2.5)
    cluster.patch(RAPI, "sleepy", {"spec": {"replicas": 1}})  # what the activator writes

    def awake() -> Any:
        conditions = {
            c["type"]: c
            for c in (cluster.get(RAPI, "sleepy") or {}).get("status", {}).get("conditions", [])
        }
        found = conditions.get("ScaledToZero")
        return found if found and "cold start" in found["message"] else None

    condition = wait_for(awake, what="the ScaledToZero condition with the cold start")
    assert condition["status"] == "False"
    assert "woken at " in condition["message"]
    assert "last cold start 2.50s" in condition["message"]


def test_with_keda_the_scaled_object_goes_before_the_scale_to_zero_and_comes_back_on_wake(
    cluster: FakeCluster, clock: Clock, activators: Activators
) -> None:
    serve_keda(cluster)
    with keda_operator(clock) as state:
        cluster.create(RAPI, resource("sleepy", autoscaling=ZERO))
        scaled = wait_for(
            lambda: cluster.get(SCALED_OBJECTS, "api-sleepy"), what="the ScaledObject"
        )
        assert scaled["spec"]["minReplicaCount"] == 1
        passes(state, 1)

        clock.now += 300
        wait_for(lambda: replicas(cluster) == 0, what="the scale to zero")
        assert cluster.get(SCALED_OBJECTS, "api-sleepy") is None
        history = cluster.history(SCALED_OBJECTS, "api-sleepy")
        assert None in history  # deleted, not left for KEDA to scale back to 1

        cluster.patch(RAPI, "sleepy", {"spec": {"replicas": 1}})  # the activator's wake
        wait_for(lambda: cluster.get(SCALED_OBJECTS, "api-sleepy"), what="the ScaledObject back")


def test_a_scaled_object_the_watch_has_not_shown_yet_still_goes_before_the_scale_to_zero(
    cluster: FakeCluster, clock: Clock, activators: Activators
) -> None:
    # A watch can lag behind the write that made an object: the operator must not trust its
    # cache that no ScaledObject exists, or KEDA scales the API straight back to 1.
    serve_keda(cluster)
    blind = cluster.inject("watch", "scaledobjects.keda.sh", code=503)
    with keda_operator(clock) as state:
        cluster.create(RAPI, resource("sleepy", autoscaling=ZERO))
        wait_for(lambda: cluster.get(SCALED_OBJECTS, "api-sleepy"), what="the ScaledObject")
        passes(state, 1)
        assert blind.hits  # the operator's watch of ScaledObjects saw nothing

        clock.now += 300
        wait_for(lambda: replicas(cluster) == 0, what="the scale to zero")
        assert None in cluster.history(SCALED_OBJECTS, "api-sleepy")


def test_the_pass_after_the_scale_to_zero_renders_0_replicas_before_the_watch_says_so(
    cluster: FakeCluster, clock: Clock, activators: Activators
) -> None:
    # The ScaledObject's deletion wakes a pass before the API's own watch event tells of its
    # 0 replicas (here: that watch is cut and refused): the pass must render the API asleep,
    # or it applies the ScaledObject again and KEDA scales the API straight back to 1.
    serve_keda(cluster)
    with keda_operator(clock) as state:
        cluster.create(RAPI, resource("sleepy", autoscaling=ZERO))
        wait_for(lambda: cluster.get(SCALED_OBJECTS, "api-sleepy"), what="the ScaledObject")
        passes(state, 1)
        blind = cluster.inject("watch", "realtimeapis.cortex.dev", code=503)
        assert cluster.disconnect_watches("realtimeapis.cortex.dev") >= 1

        clock.now += 300
        wait_for(
            lambda: (
                (cluster.get("apps/v1/deployments", "api-sleepy") or {})
                .get("spec", {})
                .get("replicas")
                == 0
            ),
            what="the Deployment at 0",
        )
        assert blind.hits  # the operator's watch of the API never told it of the 0
        assert replicas(cluster) == 0
        assert cluster.get(SCALED_OBJECTS, "api-sleepy") is None
        assert None in cluster.history(SCALED_OBJECTS, "api-sleepy")
        cluster.heal()  # before the operator stops: its watch need not retry against the 503
