"""The status of a RealtimeAPI from what its Deployment and pods say, as Cortex reported it. Pure.

Facts are extracted from the watched objects once (:class:`DeploymentFacts`, :class:`PodFacts`),
kept in kopf indexes, and summarised on every change. Cortex's order (``status/code.go``):

1. ``live`` when the rollout is observed and ``ready >= requested``;
2. ``error (image pull)`` when a current pod cannot pull its image;
3. ``error (out of memory)`` when a current pod was OOM-killed;
4. ``error`` when a current pod crash-loops or failed;
5. ``compute unavailable`` when a current pod has been unschedulable for ``stall_after``;
6. ``live`` when ``ready >= min_replicas`` (the HPA is still adding replicas);
7. ``updating`` otherwise.

"Current" pods carry the spec hash of the Deployment's template, so old pods of a rollout
never turn a new version into an error. (Cortex tested crashes before OOM kills; here a pod that
crash-loops because it was OOM-killed reports the cause, out of memory.) No I/O here.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cortex import errors
from cortex.contracts import APIState
from cortex.k8s import ANNOTATION_SPEC_HASH
from cortex.spec import parse_api_spec

__all__ = [
    "STALL_AFTER",
    "ApiFacts",
    "DeploymentFacts",
    "PodFacts",
    "Summary",
    "error_status",
    "render",
    "summarize",
]

STALL_AFTER = 15 * 60.0  # seconds a pod may stay unschedulable before "compute unavailable"

_IMAGE_PULL = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_REASONS = {
    APIState.LIVE: "Live",
    APIState.UPDATING: "Updating",
    APIState.ERROR: "Error",
    APIState.ERROR_IMAGE_PULL: "ImagePullError",
    APIState.ERROR_OOM: "OutOfMemory",
    APIState.COMPUTE_UNAVAILABLE: "ComputeUnavailable",
}
Body = Mapping[str, Any]


def _time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class ApiFacts:
    """What the status needs of a RealtimeAPI resource (``valid``: its spec parses)."""

    uid: str
    valid: bool
    min_replicas: int = 1
    init_replicas: int = 1
    endpoint: str = ""
    status: Body | None = None

    @classmethod
    def of(cls, body: Body) -> ApiFacts:
        meta, current = body["metadata"], body.get("status") or None
        try:
            api = parse_api_spec(meta["name"], body.get("spec") or {})
        except errors.SpecError:
            return cls(meta["uid"], False, status=current)
        scaling = api.autoscaling
        return cls(
            meta["uid"], True, scaling.min_replicas, api.init_replicas, api.endpoint, current
        )


@dataclass(frozen=True)
class DeploymentFacts:
    """What the status needs of a Deployment."""

    requested: int
    ready: int
    up_to_date: int
    rolled_out: bool  # the controller has seen the latest spec
    spec_hash: str | None

    @classmethod
    def of(cls, body: Body) -> DeploymentFacts:
        spec, status, meta = body.get("spec", {}), body.get("status") or {}, body["metadata"]
        template = spec.get("template", {}).get("metadata", {})
        return cls(
            requested=int(spec.get("replicas", 1)),
            ready=int(status.get("readyReplicas", 0)),
            up_to_date=int(status.get("updatedReplicas", 0)),
            rolled_out=status.get("observedGeneration", 0) >= meta.get("generation", 0),
            spec_hash=(template.get("annotations") or {}).get(ANNOTATION_SPEC_HASH),
        )


@dataclass(frozen=True)
class PodFacts:
    """What the status needs of a pod: its spec hash and its worst problem, if any."""

    name: str
    spec_hash: str | None
    problem: APIState | None = None  # ERROR_IMAGE_PULL | ERROR_OOM | ERROR
    detail: str = ""
    unschedulable_since: datetime.datetime | None = None

    @classmethod
    def of(cls, body: Body) -> PodFacts:
        meta, status = body["metadata"], body.get("status") or {}
        name = meta["name"]
        spec_hash = (meta.get("annotations") or {}).get(ANNOTATION_SPEC_HASH)
        problems: list[tuple[APIState, str]] = []
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            terminated = (container.get("state") or {}).get("terminated") or {}
            last = (container.get("lastState") or {}).get("terminated") or {}
            reason = waiting.get("reason", "")
            if reason in _IMAGE_PULL:
                problems.append(
                    (APIState.ERROR_IMAGE_PULL, f"{reason}: {waiting.get('message', '')}")
                )
            elif "OOMKilled" in (terminated.get("reason"), last.get("reason")):
                problems.append(
                    (APIState.ERROR_OOM, "the container was OOM-killed; raise compute.mem")
                )
            elif reason == "CrashLoopBackOff" or terminated.get("exitCode", 0) != 0:
                code = last.get("exitCode", terminated.get("exitCode"))
                problems.append(
                    (APIState.ERROR, f"the container crashed (exit code {code}); see its logs")
                )
        if status.get("phase") == "Failed":
            problems.append(
                (APIState.ERROR, f"the pod failed: {status.get('reason', '')}".rstrip(": "))
            )
        order = (APIState.ERROR_IMAGE_PULL, APIState.ERROR_OOM, APIState.ERROR)
        problem, detail = min(problems, key=lambda p: order.index(p[0]), default=(None, ""))
        since = None
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("reason") == "Unschedulable"
            ):
                since = _time(condition.get("lastTransitionTime")) or _time(
                    meta.get("creationTimestamp")
                )
                detail = detail or condition.get("message", "")
        return cls(name, spec_hash, problem, detail.strip(), since)


@dataclass(frozen=True)
class Summary:
    status: APIState
    requested: int
    ready: int
    up_to_date: int
    message: str = ""
    recheck_in: float | None = None  # seconds until an unschedulable pod counts as stalled


def summarize(
    deployment: DeploymentFacts | None,
    pods: Iterable[PodFacts],
    *,
    min_replicas: int,
    init_replicas: int,
    now: datetime.datetime,
    stall_after: float = STALL_AFTER,
) -> Summary:
    """The status of an API from its Deployment (None: not created yet) and pods."""
    if deployment is None:
        return Summary(APIState.UPDATING, init_replicas, 0, 0, "creating the deployment")
    counts = (deployment.requested, deployment.ready, deployment.up_to_date)
    settled = deployment.rolled_out and deployment.up_to_date >= deployment.requested
    if settled and deployment.ready >= deployment.requested:
        return Summary(APIState.LIVE, *counts)
    current = [p for p in pods if deployment.spec_hash in (None, p.spec_hash)]
    for problem in (APIState.ERROR_IMAGE_PULL, APIState.ERROR_OOM, APIState.ERROR):
        failing = [p for p in current if p.problem == problem]
        if failing:
            return Summary(problem, *counts, f"pod {failing[0].name}: {failing[0].detail}")
    waits = [
        (stall_after - (now - p.unschedulable_since).total_seconds(), p)
        for p in current
        if p.unschedulable_since is not None
    ]
    stalled = [p for left, p in waits if left <= 0]
    if stalled:
        return Summary(
            APIState.COMPUTE_UNAVAILABLE, *counts, f"pod {stalled[0].name}: {stalled[0].detail}"
        )
    recheck = min((left for left, _ in waits), default=None)
    if deployment.rolled_out and deployment.ready >= min_replicas:
        return Summary(APIState.LIVE, *counts, recheck_in=recheck)
    message = f"{deployment.ready} of {deployment.requested} replicas ready"
    return Summary(APIState.UPDATING, *counts, message, recheck)


def _condition(status: APIState, message: str, previous: Body | None, now: str) -> dict[str, Any]:
    ready = "True" if status == APIState.LIVE else "False"
    conditions = (previous or {}).get("conditions") or []
    old: Body = next((c for c in conditions if c.get("type") == "Ready"), {})
    since = old.get("lastTransitionTime") if old.get("status") == ready else None
    reason = _REASONS[status]
    return {
        "type": "Ready",
        "status": ready,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or now,
    }


def render(
    summary: Summary, *, endpoint: str, previous: Body | None, now: datetime.datetime
) -> dict[str, Any]:
    """The ``status`` to write; the Ready condition keeps its transition time when unchanged."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        # str(): the plain word, as the API server gives it back.
        "status": str(summary.status),
        "message": summary.message,
        "requested": summary.requested,
        "ready": summary.ready,
        "upToDate": summary.up_to_date,
        "endpoint": endpoint,
        "conditions": [_condition(summary.status, summary.message, previous, stamp)],
    }


def error_status(
    message: str, *, reason: str, previous: Body | None, now: datetime.datetime
) -> dict[str, Any]:
    """The status of a resource that cannot be deployed as it is (``InvalidSpec``, ``Rejected``)."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = _condition(APIState.ERROR, message, previous, stamp)
    condition["reason"] = reason
    return {"status": str(APIState.ERROR), "message": message, "conditions": [condition]}
