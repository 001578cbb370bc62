"""The status summary follows Cortex's order of precedence (pure, no cluster)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from cortex.contracts import APIState
from cortex.operator import status
from tests.fakeapi.controllers import pod_status

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
HASH = "abc"


def deployment(
    requested: int = 2, ready: int = 0, updated: int | None = None, observed: int = 1
) -> status.DeploymentFacts:
    body = {
        "metadata": {"generation": 1},
        "spec": {
            "replicas": requested,
            "template": {"metadata": {"annotations": {"cortex.dev/spec-hash": HASH}}},
        },
        "status": {
            "readyReplicas": ready,
            "updatedReplicas": requested if updated is None else updated,
            "observedGeneration": observed,
        },
    }
    return status.DeploymentFacts.of(body)


def pod(
    state: str, name: str = "p", spec_hash: str = HASH, since: str | None = None
) -> status.PodFacts:
    body: dict[str, Any] = {
        "metadata": {"name": name, "annotations": {"cortex.dev/spec-hash": spec_hash}},
        "status": pod_status(state, [{"name": "api", "image": "img"}], since),
    }
    return status.PodFacts.of(body)


def summarize(
    dep: status.DeploymentFacts | None, *pods: status.PodFacts, **kw: Any
) -> status.Summary:
    options = {"min_replicas": 1, "init_replicas": 1, "now": NOW, "stall_after": 900.0, **kw}
    return status.summarize(dep, pods, **options)


def test_no_deployment_yet_is_updating_with_the_initial_request() -> None:
    summary = summarize(None, init_replicas=3)
    assert (summary.status, summary.requested, summary.ready) == ("updating", 3, 0)


def test_all_requested_replicas_ready_is_live_even_with_a_failing_pod() -> None:
    summary = summarize(deployment(ready=2), pod("image-pull"))
    assert (summary.status, summary.ready, summary.up_to_date) == ("live", 2, 2)


def test_an_unobserved_rollout_is_not_live() -> None:
    assert summarize(deployment(ready=2, observed=0)).status == "updating"


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["image-pull", "oom", "crash"], "error (image pull)"),
        (["crash", "oom"], "error (out of memory)"),
        (["crash", "pending"], "error"),
        (["pending"], "updating"),
    ],
)
def test_pod_problems_by_precedence(states: list[str], expected: str) -> None:
    pods = [pod(state, name=f"p{i}") for i, state in enumerate(states)]
    assert summarize(deployment(ready=0), *pods).status == expected


def test_pods_of_an_old_spec_are_ignored() -> None:
    assert summarize(deployment(), pod("crash", spec_hash="old")).status == "updating"


def test_unschedulable_becomes_compute_unavailable_after_the_stall_time() -> None:
    since = (NOW - datetime.timedelta(seconds=100)).strftime("%Y-%m-%dT%H:%M:%SZ")
    waiting = summarize(deployment(), pod("unschedulable", since=since), stall_after=300.0)
    assert waiting.status == "updating" and waiting.recheck_in == pytest.approx(200.0)
    stalled = summarize(deployment(), pod("unschedulable", since=since), stall_after=60.0)
    assert stalled.status == "compute unavailable"
    assert "Insufficient nvidia.com/gpu" in stalled.message


def test_at_least_min_replicas_ready_is_live_while_the_hpa_adds_more() -> None:
    summary = summarize(deployment(requested=5, ready=2), pod("pending"), min_replicas=2)
    assert (summary.status, summary.requested, summary.ready) == ("live", 5, 2)


def test_ready_condition_keeps_its_transition_time_while_unchanged() -> None:
    live = status.Summary(APIState.LIVE, 1, 1, 1)
    first = status.render(live, endpoint="/x", previous=None, now=NOW)
    later = NOW + datetime.timedelta(minutes=5)
    again = status.render(live, endpoint="/x", previous=first, now=later)
    assert again["conditions"] == first["conditions"]
    down = status.render(
        status.Summary(APIState.UPDATING, 2, 1, 2), endpoint="/x", previous=again, now=later
    )
    assert down["conditions"][0]["status"] == "False"
    assert down["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:05:00Z"


def test_api_facts_mark_specs_that_do_not_parse() -> None:
    meta = {"name": "x", "uid": "u"}
    ok = status.ApiFacts.of(
        {"metadata": meta, "spec": {"predictor": {"type": "python", "path": "p.py"}}}
    )
    assert ok.valid and ok.endpoint == "/x"
    assert not status.ApiFacts.of({"metadata": meta, "spec": {"predictor": {}}}).valid
