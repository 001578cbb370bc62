"""The status of an API from its children's real object shapes (pure, no cluster).

The bodies are ``kubectl get -o yaml`` shapes (trimmed to what matters) of Deployments, pods and
``autoscaling/v2`` HPAs in the states each word stands for.
"""

from __future__ import annotations

import datetime
import re
import textwrap
from typing import Any

import pytest
import yaml

from cortex.contracts import APIState
from cortex.operator import status
from tests.fakeapi.controllers import pod_status

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
HASH = "abc"
REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")  # metav1.Condition's


def load(text: str) -> Any:
    return yaml.safe_load(textwrap.dedent(text))


def deployment(
    requested: int = 2, state: str = "", *, generation: int = 1
) -> status.DeploymentFacts:
    """A Deployment asking for ``requested`` replicas, ``state`` its ``status`` as YAML."""
    return status.DeploymentFacts.of(
        {
            "metadata": {"name": "api-iris", "generation": generation},
            "spec": {
                "replicas": requested,
                "progressDeadlineSeconds": 600,
                "template": {"metadata": {"annotations": {"cortex.dev/spec-hash": HASH}}},
            },
            "status": load(state) if state else {},
        }
    )


def rolled_out(requested: int = 2, ready: int | None = None) -> status.DeploymentFacts:
    """A Deployment whose rollout of generation 1 completed, ``ready`` replicas ready now."""
    ready = requested if ready is None else ready
    return deployment(
        requested,
        f"""
        observedGeneration: 1
        replicas: {requested}
        updatedReplicas: {requested}
        readyReplicas: {ready}
        availableReplicas: {ready}
        conditions:
        - type: Available
          status: "True"
          reason: MinimumReplicasAvailable
          message: Deployment has minimum availability.
        - type: Progressing
          status: "True"
          reason: NewReplicaSetAvailable
          message: ReplicaSet "api-iris-5d8f9c7b4" has successfully progressed.
        """,
    )


ROLLING = """
    observedGeneration: 2
    replicas: 3
    updatedReplicas: 1
    readyReplicas: 2
    availableReplicas: 2
    unavailableReplicas: 1
    conditions:
    - type: Available
      status: "True"
      reason: MinimumReplicasAvailable
      message: Deployment has minimum availability.
    - type: Progressing
      status: "True"
      reason: ReplicaSetUpdated
      message: ReplicaSet "api-iris-7b9d4c8f6" is progressing.
"""
STUCK = """
    observedGeneration: 2
    replicas: 3
    updatedReplicas: 1
    readyReplicas: 2
    availableReplicas: 2
    unavailableReplicas: 1
    conditions:
    - type: Available
      status: "True"
      reason: MinimumReplicasAvailable
      message: Deployment has minimum availability.
    - type: Progressing
      status: "False"
      reason: ProgressDeadlineExceeded
      message: ReplicaSet "api-iris-7b9d4c8f6" has timed out progressing.
"""
QUOTA = (
    'pods "api-iris-5d8f9c7b4-7xkq2" is forbidden: exceeded quota: gpu-quota, requested: '
    "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, limited: requests.nvidia.com/gpu=4"
)
POD_SECURITY = (
    'pods "api-iris-5d8f9c7b4-" is forbidden: violates PodSecurity "restricted:latest": '
    'seccompProfile (pod or container "api" must set securityContext.seccompProfile.type to '
    '"RuntimeDefault" or "Localhost")'
)


def refused(message: str) -> str:
    return f"""
    observedGeneration: 1
    unavailableReplicas: 2
    conditions:
    - type: Available
      status: "False"
      reason: MinimumReplicasUnavailable
      message: Deployment does not have minimum availability.
    - type: ReplicaFailure
      status: "True"
      reason: FailedCreate
      message: '{message.replace("'", "''")}'
    - type: Progressing
      status: "True"
      reason: NewReplicaSetCreated
      message: Created new replica set "api-iris-5d8f9c7b4"
    """


def pod(state: str, name: str = "api-iris-5d8f9c7b4-x7k2p", **meta: Any) -> status.PodFacts:
    """A pod of the current spec, ``state`` its ``status`` as YAML."""
    metadata = {"name": name, "annotations": {"cortex.dev/spec-hash": HASH}, **meta}
    return status.PodFacts.of({"metadata": metadata, "status": load(state)})


def fake_pod(state: str, name: str = "p", spec_hash: str = HASH, since: str | None = None) -> Any:
    """A pod in one of the fake cluster's states (what the operator tests set)."""
    body: dict[str, Any] = {
        "metadata": {"name": name, "annotations": {"cortex.dev/spec-hash": spec_hash}},
        "status": pod_status(state, [{"name": "api", "image": "img"}], since),
    }
    return status.PodFacts.of(body)


RUNNING = """
    phase: Running
    conditions:
    - {type: Initialized, status: "True"}
    - {type: Ready, status: "True"}
    - {type: PodScheduled, status: "True"}
    containerStatuses:
    - name: api
      ready: true
      restartCount: 0
      state: {running: {startedAt: "2026-01-01T11:50:00Z"}}
"""
STARTING = """
    phase: Running
    conditions:
    - {type: Ready, status: "False", reason: ContainersNotReady}
    - {type: PodScheduled, status: "True"}
    containerStatuses:
    - name: api
      ready: false
      restartCount: 0
      started: true
      state: {running: {startedAt: "2026-01-01T11:58:00Z"}}
"""
IMAGE_PULL = """
    phase: Pending
    containerStatuses:
    - name: api
      image: registry.example.com/iris:v2
      ready: false
      restartCount: 0
      state:
        waiting:
          reason: ImagePullBackOff
          message: 'Back-off pulling image "registry.example.com/iris:v2"'
"""
OOM = """
    phase: Running
    containerStatuses:
    - name: api
      ready: false
      restartCount: 4
      lastState:
        terminated: {exitCode: 137, reason: OOMKilled, finishedAt: "2026-01-01T11:59:00Z"}
      state:
        waiting:
          reason: CrashLoopBackOff
          message: back-off 1m20s restarting failed container=api pod=api-iris-5d8f9c7b4-x7k2p
"""
CRASH = OOM.replace("137, reason: OOMKilled", "1, reason: Error")
INIT_CRASH = """
    phase: Pending
    conditions:
    - type: Initialized
      status: "False"
      reason: ContainersNotInitialized
      message: 'containers with incomplete status: [project]'
    - {type: PodScheduled, status: "True"}
    initContainerStatuses:
    - name: project
      ready: false
      restartCount: 3
      lastState:
        terminated: {exitCode: 1, reason: Error, finishedAt: "2026-01-01T11:59:00Z"}
      state:
        waiting:
          reason: CrashLoopBackOff
          message: back-off 40s restarting failed container=project pod=api-iris-5d8f9c7b4-x7k2p
    containerStatuses:
    - name: api
      ready: false
      restartCount: 0
      state: {waiting: {reason: PodInitializing}}
"""
INIT_ERROR = """
    phase: Pending
    initContainerStatuses:
    - name: project
      ready: false
      restartCount: 0
      state:
        terminated: {exitCode: 2, reason: Error, finishedAt: "2026-01-01T11:59:00Z"}
    containerStatuses:
    - name: api
      ready: false
      state: {waiting: {reason: PodInitializing}}
"""
CONFIG = """
    phase: Pending
    containerStatuses:
    - name: api
      ready: false
      restartCount: 0
      state:
        waiting:
          reason: CreateContainerConfigError
          message: configmap "iris-settings" not found
"""
UNSCHEDULABLE = """
    phase: Pending
    conditions:
    - type: PodScheduled
      status: "False"
      reason: Unschedulable
      lastTransitionTime: "{since}"
      message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes
        are available: 3 No preemption victims found for incoming pod.'
"""
EVICTED = """
    phase: Failed
    reason: Evicted
    message: 'The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi,
      available: 512Mi. Container api was using 2Gi, request is 0, has larger consumption of
      ephemeral-storage.'
    conditions:
    - type: DisruptionTarget
      status: "True"
      reason: TerminationByKubelet
      message: 'The node was low on resource: ephemeral-storage.'
    containerStatuses:
    - name: api
      ready: false
      restartCount: 0
      state:
        terminated:
          exitCode: 137
          reason: ContainerStatusUnknown
          message: The container could not be located when the pod was terminated
"""


def hpa(conditions: str = "") -> status.HPAFacts:
    """An ``autoscaling/v2`` HPA; ``conditions`` its ``status.conditions`` as YAML."""
    state = {"currentReplicas": 2, "desiredReplicas": 2}
    if conditions:
        state["conditions"] = load(conditions)
    return status.HPAFacts.of({"metadata": {"name": "api-iris"}, "status": state})


SCALING = """
- type: AbleToScale
  status: "True"
  reason: ReadyForNewScale
  message: recommended size matches current size
- type: ScalingActive
  status: "True"
  reason: ValidMetricFound
  message: the HPA was able to successfully calculate a replica count from pods metric
    cortex_in_flight_requests_avg
"""
NO_METRIC = """
- type: AbleToScale
  status: "True"
  reason: SucceededGetScale
  message: the HPA controller was able to get the target's current scale
- type: ScalingActive
  status: "False"
  reason: FailedGetPodsMetric
  message: 'the HPA was unable to compute the replica count: unable to get metric
    cortex_in_flight_requests_avg: unable to fetch metrics from custom metrics API: the server
    could not find the metric cortex_in_flight_requests_avg for pods'
"""


def summarize(
    dep: status.DeploymentFacts | None,
    *pods: status.PodFacts,
    autoscaler: status.HPAFacts | None = None,
    **kw: Any,
) -> status.Summary:
    options = {"min_replicas": 1, "init_replicas": 1, "now": NOW, "stall_after": 900.0, **kw}
    return status.summarize(dep, pods, autoscaler or hpa(SCALING), **options)


def conditions(summary: status.Summary) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in summary.conditions}


def since(seconds: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the words, each from its real cause --------------------------------------------------------

# (the case, the Deployment, its pods, the word, a part of the message)
CASES: list[tuple[str, status.DeploymentFacts | None, list[status.PodFacts], str, str]] = [
    ("not created yet", None, [], "updating", "creating the deployment"),
    ("all replicas ready", rolled_out(), [pod(RUNNING)], "live", ""),
    ("asks for no replicas", rolled_out(0), [], "scaled to zero", "0 replicas"),
    ("quota", deployment(2, refused(QUOTA)), [], "error (rejected)", QUOTA),
    ("pod security", deployment(2, refused(POD_SECURITY)), [], "error (rejected)", POD_SECURITY),
    ("image pull", rolled_out(ready=1), [pod(IMAGE_PULL)], "error (image pull)", "iris:v2"),
    ("oom", rolled_out(ready=0), [pod(OOM)], "error (out of memory)", "compute.mem"),
    ("crash loop", rolled_out(ready=0), [pod(CRASH)], "error", "exit code 1"),
    ("init crash loop", rolled_out(ready=0), [pod(INIT_CRASH)], "error (init)", "exit code 1"),
    ("init error", rolled_out(ready=0), [pod(INIT_ERROR)], "error (init)", "exit code 2"),
    ("config", rolled_out(ready=0), [pod(CONFIG)], "error (config)", '"iris-settings" not found'),
    (
        "unschedulable",
        rolled_out(ready=0),
        [pod(UNSCHEDULABLE.format(since=since(1000)))],
        "compute unavailable",
        "3 Insufficient nvidia.com/gpu",
    ),
    (
        "stuck",
        deployment(2, STUCK, generation=2),
        [pod(STARTING)],
        "error (rollout stuck)",
        "timed out",
    ),
    ("rolling", deployment(2, ROLLING, generation=2), [pod(STARTING)], "live", ""),
    ("starting", rolled_out(ready=0), [pod(STARTING)], "updating", "0 of 2 replicas ready"),
]


@pytest.mark.parametrize(
    ("dep", "pods", "word", "said"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_word_from_its_cause(
    dep: status.DeploymentFacts | None, pods: list[status.PodFacts], word: str, said: str
) -> None:
    summary = summarize(dep, *pods)
    assert summary.status == word
    assert said in summary.message
    ready = summary.conditions[0]
    assert (ready.type, ready.status) == ("Ready", "True" if word == "live" else "False")


@pytest.mark.parametrize(("dep", "pods"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_every_condition_is_a_metav1_condition(
    dep: status.DeploymentFacts | None, pods: list[status.PodFacts]
) -> None:
    for autoscaler in (None, hpa(), hpa(NO_METRIC)):
        summary = status.summarize(
            dep, pods, autoscaler, min_replicas=1, init_replicas=1, now=NOW, stall_after=900.0
        )
        rendered = status.render(
            summary, endpoint="/iris", selector="s", generation=3, previous=None, now=NOW
        )
        assert [c["type"] for c in rendered["conditions"]] == [
            "Ready",
            "Progressing",
            "ScalingActive",
        ]
        for condition in rendered["conditions"]:
            assert condition["status"] in ("True", "False", "Unknown")
            assert REASON.match(condition["reason"]), condition
            assert isinstance(condition["message"], str)
            assert condition["lastTransitionTime"] == "2026-01-01T12:00:00Z"
            assert condition["observedGeneration"] == 3


def test_all_requested_replicas_ready_is_live_even_with_a_failing_pod() -> None:
    summary = summarize(rolled_out(), pod(RUNNING), pod(IMAGE_PULL, name="extra"))
    assert (summary.status, summary.ready, summary.up_to_date) == ("live", 2, 2)


def test_no_deployment_yet_is_updating_with_the_initial_request() -> None:
    summary = summarize(None, init_replicas=3)
    assert (summary.status, summary.requested, summary.ready, summary.replicas) == (
        "updating",
        3,
        0,
        0,
    )
    assert conditions(summary)["Progressing"] == ("True", "Creating")


def test_an_unobserved_rollout_is_not_live_and_progressing() -> None:
    summary = summarize(deployment(2, STUCK.replace("observedGeneration: 2", ""), generation=2))
    assert summary.status == "updating"
    assert conditions(summary)["Progressing"] == ("True", "RolloutPending")


def test_scaled_to_zero_is_not_ready_and_not_live() -> None:
    summary = summarize(rolled_out(0), autoscaler=hpa())
    assert (summary.status, summary.requested, summary.replicas) == ("scaled to zero", 0, 0)
    assert conditions(summary)["Ready"] == ("False", "ScaledToZero")


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
    pods = [fake_pod(state, name=f"p{i}") for i, state in enumerate(states)]
    assert summarize(rolled_out(ready=0), *pods).status == expected


def test_init_and_config_problems_by_precedence() -> None:
    assert summarize(rolled_out(ready=0), pod(CRASH), pod(CONFIG)).status == "error (config)"
    assert summarize(rolled_out(ready=0), pod(CONFIG), pod(INIT_CRASH)).status == "error (init)"
    assert summarize(rolled_out(ready=0), pod(INIT_CRASH), pod(OOM)).status == (
        "error (out of memory)"
    )


def test_an_init_container_that_pulls_no_image_is_an_image_pull_error() -> None:
    state = IMAGE_PULL.replace("containerStatuses", "initContainerStatuses")
    summary = summarize(rolled_out(ready=0), pod(state))
    assert summary.status == "error (image pull)"
    assert "init container api" in summary.message


def test_the_message_names_the_pod_and_the_init_container() -> None:
    summary = summarize(rolled_out(ready=0), pod(INIT_CRASH, name="api-iris-1"))
    assert summary.message == (
        "pod api-iris-1: init container project crashed (exit code 1); see its logs"
    )
    assert conditions(summary)["Ready"] == ("False", "InitContainerFailed")


def test_a_rejection_carries_the_api_servers_message() -> None:
    summary = summarize(deployment(2, refused(QUOTA)))
    assert summary.message == QUOTA
    assert conditions(summary)["Ready"] == ("False", "FailedCreate")
    assert summary.conditions[0].message == QUOTA


def test_a_replica_set_the_api_server_refused_is_a_rejection() -> None:
    refusal = (
        'Failed to create new replica set "api-iris-5d8f9c7b4": admission webhook '
        '"validate.kyverno.svc-fail" denied the request: resource ReplicaSet/default/'
        "api-iris-5d8f9c7b4 was blocked due to the following policies"
    )
    state = f"""
    observedGeneration: 1
    conditions:
    - type: Progressing
      status: "False"
      reason: ReplicaSetCreateError
      message: '{refusal}'
    """
    summary = summarize(deployment(2, state))
    assert (summary.status, summary.message) == ("error (rejected)", refusal)
    assert conditions(summary)["Progressing"] == ("False", "ReplicaSetCreateError")


def test_a_stuck_rollout_says_so_though_old_replicas_still_serve() -> None:
    summary = summarize(deployment(2, STUCK, generation=2), pod(STARTING), min_replicas=2)
    assert summary.status == "error (rollout stuck)"
    assert summary.message == (
        'ReplicaSet "api-iris-7b9d4c8f6" has timed out progressing. (2 of 2 replicas ready)'
    )
    assert conditions(summary)["Progressing"] == ("False", "ProgressDeadlineExceeded")


def test_conditions_of_a_spec_the_controller_has_not_seen_do_not_count() -> None:
    for state in (STUCK, refused(QUOTA)):
        stale = deployment(2, state, generation=5)
        assert summarize(stale, pod(STARTING)).status == "updating"


def test_an_unschedulable_pod_of_a_stuck_rollout_is_compute_unavailable_at_once() -> None:
    waiting = pod(UNSCHEDULABLE.format(since=since(10)))
    summary = summarize(deployment(2, STUCK, generation=2), waiting)
    assert summary.status == "compute unavailable"


def test_unschedulable_becomes_compute_unavailable_after_the_stall_time() -> None:
    waiting = pod(UNSCHEDULABLE.format(since=since(100)))
    early = summarize(rolled_out(ready=0), waiting, stall_after=300.0)
    assert early.status == "updating" and early.recheck_in == pytest.approx(200.0)
    stalled = summarize(rolled_out(ready=0), waiting, stall_after=60.0)
    assert stalled.status == "compute unavailable"
    assert "Insufficient nvidia.com/gpu" in stalled.message
    assert conditions(stalled)["Ready"] == ("False", "ComputeUnavailable")


def test_at_least_min_replicas_ready_is_live_while_the_hpa_adds_more() -> None:
    summary = summarize(rolled_out(5, ready=2), pod(STARTING), min_replicas=2)
    assert (summary.status, summary.requested, summary.ready) == ("live", 5, 2)
    assert summary.conditions[0].message == "2 of 5 replicas ready"


# -- pods that do not count ---------------------------------------------------------------------


def test_pods_of_an_old_spec_are_ignored() -> None:
    assert summarize(rolled_out(ready=0), fake_pod("crash", spec_hash="old")).status == "updating"


def test_a_leftover_evicted_pod_does_not_turn_a_healthy_api_into_an_error() -> None:
    evicted = pod(EVICTED, name="api-iris-5d8f9c7b4-old")
    assert not evicted.active
    summary = summarize(rolled_out(3, ready=2), evicted, pod(RUNNING), pod(STARTING))
    assert summary.status == "live"
    assert summarize(rolled_out(3, ready=0), evicted).status == "updating"


def test_a_terminating_pod_does_not_count() -> None:
    leaving = pod(CRASH, deletionTimestamp="2026-01-01T11:59:30Z", deletionGracePeriodSeconds=30)
    assert summarize(rolled_out(2, ready=0), leaving).status == "updating"


# -- Progressing and ScalingActive --------------------------------------------------------------


def test_progressing_follows_the_deployment_while_a_rollout_is_under_way() -> None:
    summary = summarize(deployment(2, ROLLING, generation=2))
    assert conditions(summary)["Progressing"] == ("True", "ReplicaSetUpdated")
    assert summary.conditions[1].message == 'ReplicaSet "api-iris-7b9d4c8f6" is progressing.'


def test_a_completed_rollout_is_no_longer_progressing() -> None:
    assert conditions(summarize(rolled_out()))["Progressing"] == ("False", "NewReplicaSetAvailable")


def test_an_hpa_that_cannot_read_its_metric_shows_in_scaling_active() -> None:
    summary = summarize(rolled_out(), autoscaler=hpa(NO_METRIC))
    scaling = summary.conditions[2]
    assert (scaling.type, scaling.status, scaling.reason) == (
        "ScalingActive",
        "False",
        "FailedGetPodsMetric",
    )
    assert "could not find the metric cortex_in_flight_requests_avg" in scaling.message
    assert summary.status == "live"
    assert summary.message.startswith("the autoscaler cannot scale: the HPA was unable")


def test_scaling_active_is_unknown_until_the_hpa_reports() -> None:
    assert conditions(summarize(rolled_out(), autoscaler=hpa()))["ScalingActive"] == (
        "Unknown",
        "AutoscalerPending",
    )
    no_hpa = status.summarize(
        rolled_out(), [], None, min_replicas=1, init_replicas=1, now=NOW, stall_after=900.0
    )
    assert conditions(no_hpa)["ScalingActive"] == ("Unknown", "NoAutoscaler")
    assert conditions(summarize(rolled_out()))["ScalingActive"] == ("True", "ValidMetricFound")


# -- the status written -------------------------------------------------------------------------


def render(summary: status.Summary, previous: Any, now: datetime.datetime, **kw: Any) -> Any:
    options = {"endpoint": "/iris", "selector": "cortex.dev/api-name=iris", "generation": 1}
    return status.render(summary, previous=previous, now=now, **{**options, **kw})


def test_render_writes_what_scale_and_the_printer_columns_need() -> None:
    written = render(summarize(deployment(2, ROLLING, generation=2)), None, NOW, generation=2)
    assert {k: v for k, v in written.items() if k != "conditions"} == {
        "status": "live",
        "message": "",
        "requested": 2,
        "ready": 2,
        "upToDate": 1,
        "replicas": 3,
        "selector": "cortex.dev/api-name=iris",
        "endpoint": "/iris",
        "observedGeneration": 2,
    }


def test_a_condition_keeps_its_transition_time_while_its_status_is_unchanged() -> None:
    first = render(summarize(rolled_out()), None, NOW)
    later = NOW + datetime.timedelta(minutes=5)
    again = render(summarize(rolled_out()), first, later)
    assert again["conditions"] == first["conditions"]
    down = render(summarize(rolled_out(ready=1), pod(CRASH)), again, later)
    ready, progressing, _ = down["conditions"]
    assert (ready["status"], ready["lastTransitionTime"]) == ("False", "2026-01-01T12:05:00Z")
    assert progressing["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_a_child_change_keeps_the_observed_generation() -> None:
    first = render(summarize(rolled_out()), None, NOW, generation=4)
    again = render(summarize(rolled_out(ready=1)), first, NOW, generation=None)
    assert again["observedGeneration"] == 4
    assert {c["observedGeneration"] for c in again["conditions"]} == {4}


def test_error_status_keeps_what_the_children_said() -> None:
    previous = render(summarize(rolled_out()), None, NOW, generation=1)
    later = NOW + datetime.timedelta(minutes=1)
    failed = status.error_status(
        "api 'iris': autoscaling.min_replicas (3) must be <= max_replicas (2)",
        word=APIState.ERROR,
        reason="InvalidSpec",
        generation=2,
        previous=previous,
        now=later,
    )
    assert failed["status"] == "error" and failed["observedGeneration"] == 2
    kept = ("requested", "ready", "upToDate", "replicas", "selector", "endpoint")
    assert {k: failed[k] for k in kept} == {k: previous[k] for k in kept}
    ready, *others = failed["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidSpec")
    assert ready["message"].startswith("api 'iris'")
    assert ready["lastTransitionTime"] == "2026-01-01T12:01:00Z"
    assert others == previous["conditions"][1:]


def test_error_status_of_an_api_never_deployed() -> None:
    forbidden = (
        'deployments.apps "api-iris" is forbidden: cannot set blockOwnerDeletion if an '
        "ownerReference refers to a resource you can't set finalizers on: , <nil>"
    )
    failed = status.error_status(
        forbidden,
        word=APIState.ERROR_REJECTED,
        reason="Forbidden",
        generation=1,
        previous=None,
        now=NOW,
    )
    assert failed == {
        "status": "error (rejected)",
        "message": forbidden,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "Forbidden",
                "message": forbidden,
                "lastTransitionTime": "2026-01-01T12:00:00Z",
                "observedGeneration": 1,
            }
        ],
        "observedGeneration": 1,
    }


def test_api_facts_mark_specs_that_do_not_parse() -> None:
    meta = {"name": "x", "uid": "u"}
    ok = status.ApiFacts.of(
        {"metadata": meta, "spec": {"predictor": {"type": "python", "path": "p.py"}}}
    )
    assert ok.valid and ok.endpoint == "/x"
    assert not status.ApiFacts.of({"metadata": meta, "spec": {"predictor": {}}}).valid
