"""The kopf handlers: RealtimeAPIs reconciled, level-triggered, into their children and a status.

``build_registry(settings)`` returns a fresh :class:`kopf.OperatorRegistry` (no global one).
kopf watches the RealtimeAPIs and, labelled ``cortex.dev/api-name``, their Deployments,
Services, Ingresses, HPAs and pods, and keeps the latest of each in an index. Every event only
wakes its API in the work queue (:class:`~cortex.operator.state.State`); one pass
(:func:`reconcile`) then:

1. reads the resource from the index (gone: everything kept for it is dropped);
2. parses the spec and renders the children (cached per generation and replica count); a spec
   that does not parse is status ``error`` (InvalidSpec), not retried until the spec changes;
3. applies (server-side apply, :mod:`cortex.operator.kube`) each child the live object in the
   index does not already cover (:func:`cortex.operator.drift.covers`): nothing for a converged
   API, so a restarted operator writes nothing; a hand edit or a deleted child is an event, and
   the pass puts it back. A child missing from the index is looked up first: a name taken by
   an object cortex does not own is an error (NameTaken), never taken over;
4. writes the status when it changed (:mod:`cortex.operator.status`), posting an Event when its
   word changed.

Failures: the API server refusing a child (400/403/422: admission, quota, RBAC) is status
``error (rejected)`` with its message, retried slowly (the cluster can be fixed); anything that
may heal by itself (5xx, 409, 429, timeouts) is retried with exponential backoff. kopf persists
nothing on the resources (event handlers need no annotations, no finalizer): the children go
with the resource through their ownerReferences. Every API is also woken every ``resync``
seconds, in case an event was lost.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from cortex import contracts, errors
from cortex.contracts import APIState
from cortex.k8s import LABEL_API_NAME, REPLICAS_FIELD, OperatorSettings, Owner, render
from cortex.operator import drift, kube, status
from cortex.operator.state import RESYNC_SECONDS, RETRY_DELAY, STALL_AFTER, Key, State
from cortex.spec import parse_api_spec

__all__ = ["Resource", "build_registry", "reconcile"]

logger = logging.getLogger(__name__)
_CHILDREN = {LABEL_API_NAME: kopf.PRESENT}
_KINDS = {  # the index of each child kind, by the kind the renderer gives it
    "Deployment": "cortex_deployments",
    "Service": "cortex_services",
    "Ingress": "cortex_ingresses",
    "HorizontalPodAutoscaler": "cortex_hpas",
}
_WATCHED = (
    ("apps", "v1", "deployments", "cortex_deployments"),
    ("", "v1", "services", "cortex_services"),
    ("networking.k8s.io", "v1", "ingresses", "cortex_ingresses"),
    ("autoscaling", "v2", "horizontalpodautoscalers", "cortex_hpas"),
)
# Events on a change to these are Normal; any other state is worth a Warning.
_NORMAL_STATES = (APIState.LIVE, APIState.UPDATING, APIState.SCALED_TO_ZERO)
SLOW_RETRY = 60.0  # seconds before retrying what the API server refused
Index = Mapping[Key, Any]  # a kopf index: key -> collection of values


@dataclass(frozen=True)
class Resource:
    """What a pass needs of a RealtimeAPI: identity, spec, the /scale replicas, last status."""

    uid: str
    generation: int
    spec: Mapping[str, Any]
    replicas: int | None
    status: Mapping[str, Any] | None

    @classmethod
    def of(cls, body: kopf.Body) -> Resource:
        spec = dict(body.get("spec") or {})
        replicas = spec.pop(REPLICAS_FIELD, None)
        meta = body["metadata"]
        current = dict(body.get("status") or {}) or None
        return cls(meta["uid"], int(meta.get("generation") or 1), spec, replicas, current)

    @property
    def signature(self) -> tuple[str, int, int | None]:
        return (self.uid, self.generation, self.replicas)


class NameTakenError(errors.TemporaryError):
    """A child's name is taken by an object cortex does not manage (heals when it is removed)."""


def _one(index: Index, key: Key) -> Any:
    return next(iter(index.get(key, ())), None)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _ref(namespace: str, name: str, uid: str) -> kopf.RawBody:
    """Enough of a resource for kopf to post Events about it."""
    meta = {"name": name, "namespace": namespace, "uid": uid}
    ref = {"apiVersion": contracts.API_VERSION, "kind": contracts.KIND, "metadata": meta}
    return ref  # type: ignore[return-value]


def _owned_by(body: Mapping[str, Any], uid: str) -> bool:
    refs = body.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


class Pass:
    """One reconcile pass of one API, bound to the operator's state and kopf's indexes."""

    def __init__(self, state: State, indexes: Mapping[str, Index], slow_retry: float) -> None:
        self.state = state
        self.indexes = indexes
        self.slow_retry = slow_retry
        self.rendered: dict[Key, tuple[Any, list[dict[str, Any]] | errors.SpecError]] = {}

    async def __call__(self, key: Key) -> float | None:
        return await reconcile(self, key)

    def children(self, key: Key, resource: Resource) -> list[dict[str, Any]]:
        """The rendered children, once per signature; raises :class:`errors.SpecError`."""
        cached = self.rendered.get(key)
        if cached is None or cached[0] != resource.signature:
            namespace, name = key
            try:
                api = parse_api_spec(name, dict(resource.spec))
                owner = Owner(name=name, namespace=namespace, uid=resource.uid)
                result: Any = render(api, owner, self.state.settings, resource.replicas)
            except errors.SpecError as exc:
                result = exc
            cached = self.rendered[key] = (resource.signature, result)
        if isinstance(cached[1], errors.SpecError):
            raise cached[1]
        return cached[1]

    def forget(self, key: Key) -> None:
        self.rendered.pop(key, None)
        self.state.forget(key)


async def reconcile(run: Pass, key: Key) -> float | None:
    """One pass over one API; returns seconds until the next pass is due, None if none is."""
    state, indexes = run.state, run.indexes
    resource: Resource | None = _one(indexes["cortex_apis"], key)
    if resource is None:
        run.forget(key)
        return None
    namespace, name = key
    ref = _ref(namespace, name, resource.uid)
    try:
        children = run.children(key, resource)
    except errors.SpecError as exc:
        state.seen[key] = resource.signature
        await _fail(state, key, ref, resource, str(exc), APIState.ERROR, "InvalidSpec")
        return None
    try:
        changed = [await _ensure(state, key, resource, child, indexes) for child in children]
    except kube.RejectedError as exc:
        reason = "Forbidden" if exc.code == 403 else "Rejected"
        await _fail(state, key, ref, resource, str(exc), APIState.ERROR_REJECTED, reason)
        return run.slow_retry
    except NameTakenError as exc:
        await _fail(state, key, ref, resource, str(exc), APIState.ERROR, "NameTaken")
        return run.slow_retry
    except errors.TemporaryError as exc:
        logger.warning("%s/%s: %s; retrying", namespace, name, exc)
        return state.backoff(key)
    done = [what for what in changed if what]
    if done:
        logger.info("%s/%s: %s", namespace, name, ", ".join(done))
        repaired = [what for what in done if what.endswith("repaired")]
        if repaired and state.seen.get(key) == resource.signature:
            text = f"put back what was changed by hand: {', '.join(repaired)}"
            kopf.event(kopf.Body(ref), type="Warning", reason="DriftRepaired", message=text)
    state.seen[key] = resource.signature
    state.failures.pop(key, None)
    try:
        return await publish(state, key, resource, indexes)
    except errors.TemporaryError as exc:
        logger.warning("%s/%s: status not written: %s; retrying", namespace, name, exc)
        return state.backoff(key)


async def _ensure(
    state: State, key: Key, resource: Resource, child: dict[str, Any], indexes: Mapping[str, Index]
) -> str:
    """Apply one child unless its live object covers it; returns what was done ('' if nothing)."""
    kind = child["kind"]
    live: Mapping[str, Any] | None = _one(indexes[_KINDS[kind]], key)
    if live is not None and not _owned_by(live, resource.uid):
        live = None  # an old owner's leftover, or ours under a stale index: look it up
    if live is not None and drift.covers(live, child):
        return ""
    client = state.kube()
    if live is None:
        found = await client.get(child)
        if found is not None and not _owned_by(found, resource.uid):
            _refuse(found, f"{kind} {key[0]}/{child['metadata']['name']}")
        if found is not None and drift.covers(found, child):
            return ""
    await client.apply(child)
    if live is None:
        return f"{kind} created"
    return f"{kind} updated" if state.seen.get(key) != resource.signature else f"{kind} repaired"


def _refuse(found: Mapping[str, Any], what: str) -> None:
    refs = found.get("metadata", {}).get("ownerReferences") or []
    if any(ref.get("kind") == contracts.KIND for ref in refs):
        raise errors.TemporaryError(
            f"{what} still belongs to a deleted RealtimeAPI of the same name; "
            "waiting for the garbage collector to remove it"
        )
    raise NameTakenError(
        f"{what} already exists and is not managed by cortex; delete it or rename the API"
    )


async def publish(
    state: State, key: Key, resource: Resource, indexes: Mapping[str, Index]
) -> float | None:
    """Recompute the status of one API from the indexes and write it if it changed."""
    facts: status.ApiFacts | None = _one(indexes["cortex_facts"], key)
    if facts is None or not facts.valid:
        return None
    deployment = _one(indexes["cortex_deployments"], key)
    hpa = _one(indexes["cortex_hpas"], key)
    summary = status.summarize(
        None if deployment is None else status.DeploymentFacts.of(deployment),
        list(indexes["cortex_pods"].get(key, ())),
        None if hpa is None else status.HPAFacts.of(hpa),
        min_replicas=facts.min_replicas,
        init_replicas=facts.init_replicas,
        now=_now(),
        stall_after=state.stall_after,
    )
    previous = state.written.get(key, resource.status)
    new = status.render(
        summary,
        endpoint=facts.endpoint,
        selector=f"{LABEL_API_NAME}={key[1]}",
        generation=resource.generation,
        previous=previous,
        now=_now(),
    )
    await _write(state, key, _ref(*key, resource.uid), new, previous)
    return summary.recheck_in


async def _fail(
    state: State,
    key: Key,
    ref: kopf.RawBody,
    resource: Resource,
    message: str,
    word: APIState,
    reason: str,
) -> None:
    """Write an error status the operator itself found (the spec, the API server's refusal)."""
    previous = state.written.get(key, resource.status)
    new = status.error_status(
        message,
        word=word,
        reason=reason,
        generation=resource.generation,
        previous=previous,
        now=_now(),
    )
    try:
        await _write(state, key, ref, new, previous)
    except errors.TemporaryError as exc:
        logger.warning("%s/%s: status not written: %s", *key, exc)


def _changed(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    return previous is None or any(previous.get(k) != v for k, v in new.items())


async def _write(
    state: State,
    key: Key,
    ref: kopf.RawBody,
    new: dict[str, Any],
    previous: Mapping[str, Any] | None,
) -> None:
    """Patch the status when it changed; post an Event when its ``status`` word changed."""
    if not _changed(previous, new):
        return
    meta = ref["metadata"]
    api_version, kind = contracts.API_VERSION, contracts.KIND
    if not await state.kube().patch_status(api_version, kind, meta["namespace"], meta["name"], new):
        return  # the resource is gone
    state.written[key] = {**(previous or {}), **new}
    old, word = (previous or {}).get("status"), new["status"]
    if old != word:
        text = f"status {old or 'none'} -> {word}"
        if new.get("message"):
            text += f": {new['message']}"
        level = "Normal" if word in _NORMAL_STATES else "Warning"
        ready = next((c for c in new["conditions"] if c["type"] == "Ready"), new["conditions"][0])
        kopf.event(kopf.Body(ref), type=level, reason=ready["reason"], message=text)


def build_registry(
    settings: OperatorSettings,
    *,
    stall_after: float = STALL_AFTER,
    retry_delay: float = RETRY_DELAY,
    slow_retry: float = SLOW_RETRY,
    resync: float = RESYNC_SECONDS,
    state: State | None = None,
) -> kopf.OperatorRegistry:
    """The operator's handlers, bound to one :class:`State` (``state``, or a new one).

    ``stall_after``: seconds a pod may be unschedulable before ``compute unavailable``;
    ``retry_delay``: the first delay of the backoff after a temporary failure; ``slow_retry``:
    seconds before retrying what the API server refused; ``resync``: seconds between two passes
    of an API that nothing woke.
    """
    registry = kopf.OperatorRegistry()
    if state is None:
        state = State(settings, stall_after=stall_after, retry_delay=retry_delay, resync=resync)
    resource = (contracts.GROUP, contracts.VERSION, contracts.PLURAL)

    def start(kwargs: Mapping[str, Any]) -> None:
        """Hand the indexes to the work queue (on the first event: kopf has them by then)."""
        if state.serving:
            return
        indexes = {name: kwargs[name] for name in (*_INDEXES,)}
        state.serve(Pass(state, indexes, slow_retry), lambda: list(indexes["cortex_apis"]))

    @kopf.on.login(id="login", registry=registry)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        if info is not None:
            await state.connect(info)
        return info

    @kopf.on.cleanup(id="close", registry=registry)
    async def close(**_: Any) -> None:
        await state.close()

    @kopf.index(*resource, id="cortex_apis", registry=registry)
    def cortex_apis(body: kopf.Body, **_: Any) -> dict[Key, Any]:
        return {_key(body): Resource.of(body)}

    @kopf.index(*resource, id="cortex_facts", registry=registry)
    def cortex_facts(body: kopf.Body, **_: Any) -> dict[Key, Any]:
        spec = {k: v for k, v in (body.get("spec") or {}).items() if k != REPLICAS_FIELD}
        return {_key(body): status.ApiFacts.of({**body, "spec": spec})}

    for group, version, plural, index_id in _WATCHED:
        kopf.index(group, version, plural, id=index_id, labels=_CHILDREN, registry=registry)(
            _index_child
        )

    @kopf.index("", "v1", "pods", id="cortex_pods", labels=_CHILDREN, registry=registry)
    def cortex_pods(body: kopf.Body, **_: Any) -> dict[Key, Any]:
        return {_owner_key(body): status.PodFacts.of(body)}

    @kopf.on.event(*resource, id="api", registry=registry)
    async def api_changed(type: str | None, body: kopf.Body, **kwargs: Any) -> None:
        start(kwargs)
        key = _key(body)
        if type == "DELETED":
            state.wake(key)  # the pass finds it gone and forgets it
        elif state.seen.get(key) != Resource.of(body).signature:
            state.wake(key)

    for group, version, plural, _index_id in (*_WATCHED, ("", "v1", "pods", "cortex_pods")):
        kopf.on.event(group, version, plural, id="child", labels=_CHILDREN, registry=registry)(
            child_changed(state, start)
        )

    return registry


_INDEXES = ("cortex_apis", "cortex_facts", "cortex_pods", *(_KINDS.values()))


def _index_child(body: kopf.Body, **_: Any) -> dict[Key, Any]:
    return {_owner_key(body): dict(body)}


def child_changed(state: State, start: Any) -> Any:
    """An event handler that wakes the API a child belongs to."""

    async def handler(body: kopf.Body, **kwargs: Any) -> None:
        start(kwargs)
        state.wake(_owner_key(body))

    return handler


def _key(body: Mapping[str, Any]) -> Key:
    return (body["metadata"]["namespace"], body["metadata"]["name"])


def _owner_key(body: Mapping[str, Any]) -> Key:
    """The RealtimeAPI a child belongs to, from its ``cortex.dev/api-name`` label."""
    return (body["metadata"]["namespace"], body["metadata"]["labels"][LABEL_API_NAME])
