"""The status of a RealtimeAPI from what its Deployment, pods and HPA say. Pure: no I/O.

Facts are extracted from the watched objects once (:class:`DeploymentFacts`, :class:`PodFacts`,
:class:`HPAFacts`), kept in kopf indexes, and summarised on every change. The word in
``status.status`` (Cortex's, ``status/code.go``, plus the causes Cortex never told apart) is the
first that holds:

1. ``updating`` when the Deployment is not created yet;
2. ``scaled to zero`` when the Deployment asks for 0 replicas;
3. ``live`` when the rollout is observed and ``ready >= requested``;
4. ``error (rejected)`` when the API server refuses the pods (the Deployment's ``ReplicaFailure``:
   quota, pod security, a webhook) or the ReplicaSet, with the API server's message;
5. ``error (image pull)``, 6. ``error (out of memory)``, 7. ``error (init)`` (an init container
   fails), 8. ``error (config)`` (``CreateContainerConfigError``, e.g. a missing ConfigMap), 9.
   ``error`` (a container crash-loops or cannot start), each when a current pod says so;
10. ``compute unavailable`` when a current pod has been unschedulable for ``stall_after``, or at
    all once the Deployment gave up (its deadline says the wait is not a short one);
11. ``error (rollout stuck)`` when the Deployment's ``Progressing`` is ``ProgressDeadlineExceeded``;
12. ``live`` when ``ready >= min_replicas`` (the HPA is still adding replicas);
13. ``updating`` otherwise.

The Deployment's conditions count only once its controller has observed the latest spec: until
then they describe the previous one. Pods count as the ReplicaSet controller counts them
(``FilterActivePods``): not terminating, not ``Failed`` or ``Succeeded``, so a leftover Evicted
pod is nobody's error. "Current" pods also carry the spec hash of the Deployment's template, so
old pods of a rollout never turn a new version into an error. (Cortex tested crashes before OOM
kills; here a pod that crash-loops because it was OOM-killed reports the cause, out of memory.)

``status.conditions`` follow ``metav1.Condition``: ``Ready`` (True exactly when the word is
``live``; first, its reason names the word), ``Progressing`` (True while a rollout is under way,
with the Deployment's reason; False once it completed, ``NewReplicaSetAvailable``, or got stuck,
``ProgressDeadlineExceeded``), ``ScalingActive`` (the HPA's own, or made of a KEDA
ScaledObject's ``Ready``/``Active``/``Fallback``) and, when the operator routes, ``Routed``
(:mod:`cortex.operator.routing`). A condition keeps its
``lastTransitionTime`` while its status does not change.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cortex import errors
from cortex.contracts import ANNOTATION_SPEC_HASH, APIState
from cortex.k8s import route
from cortex.spec import parse_api_spec

__all__ = [
    "PROGRESSING",
    "READY",
    "SCALING_ACTIVE",
    "STALL_AFTER",
    "ApiFacts",
    "Condition",
    "DeploymentFacts",
    "HPAFacts",
    "PodFacts",
    "Summary",
    "error_status",
    "render",
    "summarize",
]

STALL_AFTER = 15 * 60.0  # seconds a pod may stay unschedulable before "compute unavailable"
READY, PROGRESSING, SCALING_ACTIVE = "Ready", "Progressing", "ScalingActive"

# The API server's and the controllers' words (pkg/controller/deployment/util, kubelet).
_IMAGE_PULL = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_CANNOT_START = ("CrashLoopBackOff", "CreateContainerError", "RunContainerError")
_COMPLETE, _TIMED_OUT = "NewReplicaSetAvailable", "ProgressDeadlineExceeded"
_RS_CREATE_ERROR = "ReplicaSetCreateError"
_ENDED = ("Failed", "Succeeded")  # pod phases the ReplicaSet no longer counts, e.g. evicted
_REASONS = {  # the Ready condition's reason for each word
    APIState.LIVE: "Live",
    APIState.UPDATING: "Updating",
    APIState.SCALED_TO_ZERO: "ScaledToZero",
    APIState.ERROR: "ContainerFailed",
    APIState.ERROR_IMAGE_PULL: "ImagePullError",
    APIState.ERROR_OOM: "OutOfMemory",
    APIState.ERROR_INIT: "InitContainerFailed",
    APIState.ERROR_CONFIG: "CreateContainerConfigError",
    APIState.ERROR_REJECTED: "FailedCreate",
    APIState.ERROR_ROLLOUT_STUCK: _TIMED_OUT,
    APIState.COMPUTE_UNAVAILABLE: "ComputeUnavailable",
}
_POD_PROBLEMS = (  # by precedence
    APIState.ERROR_IMAGE_PULL,
    APIState.ERROR_OOM,
    APIState.ERROR_INIT,
    APIState.ERROR_CONFIG,
    APIState.ERROR,
)
# What error_status keeps of the last status: the children it describes are still there.
_KEPT = ("requested", "ready", "upToDate", "replicas", "selector", "endpoint")
Body = Mapping[str, Any]


def _time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _find(conditions: Iterable[Body] | None, kind: str) -> Body:
    return next((c for c in conditions or () if c.get("type") == kind), {})


@dataclass(frozen=True)
class Condition:
    """A condition without its times: one of a child's, or one of ours before :func:`render`."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""

    @classmethod
    def find(cls, conditions: Iterable[Body] | None, kind: str) -> Condition | None:
        found = _find(conditions, kind)
        if not found:
            return None
        return cls(
            kind, str(found.get("status")), found.get("reason", ""), found.get("message", "")
        )


@dataclass(frozen=True)
class ApiFacts:
    """What the status needs of a RealtimeAPI resource (``valid``: its spec parses; ``claim``:
    the host and path its route would match, :func:`cortex.k8s.route.claim`)."""

    uid: str
    valid: bool
    min_replicas: int = 1
    init_replicas: int = 1
    endpoint: str = ""
    status: Body | None = None
    claim: tuple[str, str] | None = None
    scale_to_zero_after: float | None = None  # None: the API never scales to zero

    @classmethod
    def of(cls, body: Body) -> ApiFacts:
        meta, current = body["metadata"], body.get("status") or None
        try:
            api = parse_api_spec(meta["name"], body.get("spec") or {})
        except errors.SpecError:
            return cls(meta["uid"], False, status=current)
        scaling = api.autoscaling
        return cls(
            meta["uid"],
            True,
            scaling.min_replicas,
            api.init_replicas,
            api.endpoint,
            current,
            route.claim(api),
            scaling.scale_to_zero_after if api.scales_to_zero else None,
        )


@dataclass(frozen=True)
class DeploymentFacts:
    """What the status needs of a Deployment; its conditions as its controller wrote them."""

    requested: int  # spec.replicas
    replicas: int  # status.replicas: the pods of all its ReplicaSets, what /scale reports
    ready: int
    up_to_date: int
    rolled_out: bool  # the controller has seen the latest spec
    spec_hash: str | None
    progressing: Condition | None = None
    replica_failure: Condition | None = None

    @classmethod
    def of(cls, body: Body) -> DeploymentFacts:
        spec, status, meta = body.get("spec", {}), body.get("status") or {}, body["metadata"]
        template = spec.get("template", {}).get("metadata", {})
        conditions = status.get("conditions")
        return cls(
            requested=int(spec.get("replicas", 1)),
            replicas=int(status.get("replicas", 0)),
            ready=int(status.get("readyReplicas", 0)),
            up_to_date=int(status.get("updatedReplicas", 0)),
            rolled_out=status.get("observedGeneration", 0) >= meta.get("generation", 0),
            spec_hash=(template.get("annotations") or {}).get(ANNOTATION_SPEC_HASH),
            progressing=Condition.find(conditions, PROGRESSING),
            replica_failure=Condition.find(conditions, "ReplicaFailure"),
        )

    def rejection(self) -> str | None:
        """The API server's refusal of the pods or of the new ReplicaSet, if it refused."""
        failure, progressing = self.replica_failure, self.progressing
        if failure is not None and failure.status == "True" and failure.reason == "FailedCreate":
            return failure.message
        if progressing is not None and progressing.reason == _RS_CREATE_ERROR:
            return progressing.message
        return None

    def timed_out(self) -> str | None:
        """Why the controller gave up on the rollout (``progressDeadlineSeconds``), if it did."""
        progressing = self.progressing
        if progressing is not None and progressing.reason == _TIMED_OUT:
            return progressing.message
        return None


def _joined(what: str, detail: str) -> str:
    return f"{what}: {detail}" if detail else what


@dataclass(frozen=True)
class HPAFacts:
    """What the status needs of the autoscaler: an ``autoscaling/v2`` HorizontalPodAutoscaler
    (:meth:`of`) or a KEDA ScaledObject (:meth:`of_scaled_object`)."""

    scaling_active: Condition | None  # None: the autoscaler has not reported yet

    @classmethod
    def of(cls, body: Body) -> HPAFacts:
        conditions = (body.get("status") or {}).get("conditions")
        return cls(Condition.find(conditions, SCALING_ACTIVE))

    @classmethod
    def of_scaled_object(cls, body: Body) -> HPAFacts:
        """KEDA's ``Ready``, ``Active`` and ``Fallback`` as one ``ScalingActive``: False when the
        ScaledObject is not ready (e.g. Prometheus unreachable, a bad query) or falls back;
        True when ready, with ``Active``'s message (not active only means no load: with
        ``minReplicaCount`` >= 1 its HPA scales all the same)."""
        conditions = (body.get("status") or {}).get("conditions")
        ready = Condition.find(conditions, "Ready")
        fallback = Condition.find(conditions, "Fallback")
        if ready is None or ready.status not in ("True", "False"):
            return cls(None)  # KEDA starts with every condition Unknown
        if fallback is not None and fallback.status == "True":
            said = _joined("KEDA is using its fallback replicas", fallback.message)
            return cls(Condition(SCALING_ACTIVE, "False", fallback.reason or "Fallback", said))
        if ready.status == "False":
            said = _joined("the ScaledObject is not ready", ready.message)
            return cls(Condition(SCALING_ACTIVE, "False", ready.reason or "NotReady", said))
        active = Condition.find(conditions, "Active")
        said = active.message if active is not None and active.message else ready.message
        return cls(Condition(SCALING_ACTIVE, "True", ready.reason or "ScaledObjectReady", said))


def _container_problem(container: Body, *, init: bool) -> tuple[APIState, str] | None:
    """The container's problem, if any, and how to tell it (``init``: an init container)."""
    state, last = container.get("state") or {}, container.get("lastState") or {}
    waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
    ended = last.get("terminated") or {}
    reason, said = waiting.get("reason", ""), waiting.get("message", "")
    name = f"{'init container' if init else 'container'} {container.get('name', '')}"
    if reason in _IMAGE_PULL:
        return APIState.ERROR_IMAGE_PULL, f"{name}: {reason}: {said}"
    if reason == "CreateContainerConfigError":
        return APIState.ERROR_CONFIG, f"{name}: {said}"
    if "OOMKilled" in (terminated.get("reason"), ended.get("reason")):
        if init:  # its memory limit is ours, not compute.mem
            return APIState.ERROR_INIT, f"{name} was OOM-killed"
        return APIState.ERROR_OOM, f"{name} was OOM-killed; raise compute.mem"
    if reason in _CANNOT_START or terminated.get("exitCode", 0) != 0:
        code = ended.get("exitCode", terminated.get("exitCode"))
        how = f"crashed (exit code {code})" if code is not None else f"cannot start: {said}"
        return APIState.ERROR_INIT if init else APIState.ERROR, f"{name} {how}; see its logs"
    return None


@dataclass(frozen=True)
class PodFacts:
    """What the status needs of a pod: whether it counts, its spec hash, its worst problem."""

    name: str
    spec_hash: str | None
    active: bool = True  # not terminating, not Failed or Succeeded (e.g. evicted)
    problem: APIState | None = None  # one of _POD_PROBLEMS
    detail: str = ""
    unschedulable_since: datetime.datetime | None = None

    @classmethod
    def of(cls, body: Body) -> PodFacts:
        meta, status = body["metadata"], body.get("status") or {}
        active = not meta.get("deletionTimestamp") and status.get("phase") not in _ENDED
        found = [
            _container_problem(c, init=init)
            for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses"))
            for c in status.get(key) or []
        ]
        problems = [p for p in found if p is not None]
        problem, detail = min(problems, key=lambda p: _POD_PROBLEMS.index(p[0]), default=(None, ""))
        since = None
        scheduled = _find(status.get("conditions"), "PodScheduled")
        if scheduled.get("reason") == "Unschedulable":
            since = _time(scheduled.get("lastTransitionTime")) or _time(
                meta.get("creationTimestamp")
            )
            detail = detail or scheduled.get("message", "")
        spec_hash = (meta.get("annotations") or {}).get(ANNOTATION_SPEC_HASH)
        return cls(meta["name"], spec_hash, active, problem, detail.strip(), since)


@dataclass(frozen=True)
class Summary:
    """The word, the counts and the conditions (Ready first) of one API, before :func:`render`."""

    status: APIState
    requested: int
    ready: int
    up_to_date: int
    replicas: int
    conditions: tuple[Condition, ...]
    message: str = ""
    recheck_in: float | None = None  # seconds until an unschedulable pod counts as stalled


def _word(
    deployment: DeploymentFacts,
    pods: Iterable[PodFacts],
    *,
    min_replicas: int,
    now: datetime.datetime,
    stall_after: float,
) -> tuple[APIState, str, float | None]:
    """The word of an API whose Deployment exists, its message and when to look again."""
    ready, requested = deployment.ready, deployment.requested
    if requested == 0:
        return APIState.SCALED_TO_ZERO, "the deployment asks for 0 replicas", None
    observed = deployment.rolled_out
    if observed and deployment.up_to_date >= requested and ready >= requested:
        return APIState.LIVE, "", None
    rejection = deployment.rejection() if observed else None
    if rejection is not None:
        return APIState.ERROR_REJECTED, rejection, None
    current = [p for p in pods if p.active and deployment.spec_hash in (None, p.spec_hash)]
    for problem in _POD_PROBLEMS:
        failing = [p for p in current if p.problem == problem]
        if failing:
            return problem, f"pod {failing[0].name}: {failing[0].detail}", None
    stuck = deployment.timed_out() if observed else None
    waits = [
        (stall_after - (now - p.unschedulable_since).total_seconds(), p)
        for p in current
        if p.unschedulable_since is not None
    ]
    stalled = [p for left, p in waits if left <= 0 or stuck is not None]
    if stalled:
        return APIState.COMPUTE_UNAVAILABLE, f"pod {stalled[0].name}: {stalled[0].detail}", None
    counts = f"{ready} of {requested} replicas ready"
    if stuck is not None:
        return APIState.ERROR_ROLLOUT_STUCK, f"{stuck} ({counts})", None
    recheck = min((left for left, _ in waits), default=None)
    if observed and ready >= min_replicas:
        return APIState.LIVE, "", recheck
    return APIState.UPDATING, counts, recheck


def _progressing(deployment: DeploymentFacts | None) -> Condition:
    if deployment is None:
        return Condition(PROGRESSING, "True", "Creating", "creating the deployment")
    if not deployment.rolled_out:
        message = "the deployment controller has not observed the latest spec yet"
        return Condition(PROGRESSING, "True", "RolloutPending", message)
    found = deployment.progressing
    if found is None:
        return Condition(PROGRESSING, "Unknown", "NoDeploymentCondition", "")
    if found.reason == _COMPLETE:  # the Deployment's True means "progressed", ours "under way"
        return Condition(PROGRESSING, "False", found.reason, found.message)
    return Condition(PROGRESSING, found.status, found.reason, found.message)


def _scaling(hpa: HPAFacts | None) -> Condition:
    if hpa is None:
        return Condition(SCALING_ACTIVE, "Unknown", "NoAutoscaler", "no autoscaler yet")
    if hpa.scaling_active is None:
        message = "the autoscaler has not reported yet"
        return Condition(SCALING_ACTIVE, "Unknown", "AutoscalerPending", message)
    return hpa.scaling_active


def summarize(
    deployment: DeploymentFacts | None,
    pods: Iterable[PodFacts],
    hpa: HPAFacts | None,
    *,
    min_replicas: int,
    init_replicas: int,
    now: datetime.datetime,
    stall_after: float,
) -> Summary:
    """The status of an API from its Deployment and HPA (None: not there yet) and pods."""
    scaling = _scaling(hpa)
    if deployment is None:
        word, message, recheck = APIState.UPDATING, "creating the deployment", None
        counts = (init_replicas, 0, 0, 0)
    else:
        word, message, recheck = _word(
            deployment, pods, min_replicas=min_replicas, now=now, stall_after=stall_after
        )
        counts = (
            deployment.requested,
            deployment.ready,
            deployment.up_to_date,
            deployment.replicas,
        )
    if word == APIState.LIVE and scaling.status == "False":
        message = f"the autoscaler cannot scale: {scaling.message}"
    ready = Condition(
        READY,
        "True" if word == APIState.LIVE else "False",
        _REASONS[word],
        message or f"{counts[1]} of {counts[0]} replicas ready",
    )
    return Summary(word, *counts, (ready, _progressing(deployment), scaling), message, recheck)


def _stamp(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _observed(generation: int | None, previous: Body | None) -> dict[str, int]:
    """``observedGeneration``: this one, else the last one written (a child changed)."""
    found = generation if generation is not None else (previous or {}).get("observedGeneration")
    return {} if found is None else {"observedGeneration": int(found)}


def _stamped(
    condition: Condition, previous: Body | None, stamp: str, observed: dict[str, int]
) -> dict[str, Any]:
    old = _find((previous or {}).get("conditions"), condition.type)
    since = old.get("lastTransitionTime") if old.get("status") == condition.status else None
    return {
        "type": condition.type,
        "status": condition.status,
        "reason": condition.reason,
        "message": condition.message,
        "lastTransitionTime": since or stamp,
        **observed,
    }


def render(
    summary: Summary,
    *,
    endpoint: str,
    selector: str,
    generation: int | None,
    previous: Body | None,
    now: datetime.datetime,
) -> dict[str, Any]:
    """The whole ``status`` to write, ``replicas`` and ``selector`` for the ``/scale``
    subresource included; ``generation`` None: a child changed, the spec did not."""
    stamp, observed = _stamp(now), _observed(generation, previous)
    return {
        # str(): the plain word, as the API server gives it back.
        "status": str(summary.status),
        "message": summary.message,
        "requested": summary.requested,
        "ready": summary.ready,
        "upToDate": summary.up_to_date,
        "replicas": summary.replicas,
        "selector": selector,
        "endpoint": endpoint,
        "conditions": [_stamped(c, previous, stamp, observed) for c in summary.conditions],
        **observed,
    }


def error_status(
    message: str,
    *,
    word: APIState,
    reason: str,
    generation: int | None,
    previous: Body | None,
    now: datetime.datetime,
) -> dict[str, Any]:
    """The status of an API the operator cannot deploy as it is: a bad spec (``error``,
    ``InvalidSpec``), a child refused (``error (rejected)``, ``Rejected`` or ``Forbidden``) or a
    child name taken (``error``, ``NameTaken``). What the children already deployed say (counts,
    endpoint, their conditions) stays as last written: they are still there."""
    stamp, observed, last = _stamp(now), _observed(generation, previous), previous or {}
    ready = _stamped(Condition(READY, "False", reason, message), previous, stamp, observed)
    others = [c for c in last.get("conditions") or [] if c.get("type") != READY]
    return {
        **{key: last[key] for key in _KEPT if key in last},
        "status": str(word),
        "message": message,
        "conditions": [ready, *others],
        **observed,
    }
