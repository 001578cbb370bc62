"""The kopf handlers: RealtimeAPIs reconciled, level-triggered, into their children and a status.

``build_registry(settings)`` returns a fresh :class:`kopf.OperatorRegistry` (no global one).
kopf watches the RealtimeAPIs and, labelled ``cortex.dev/api-name``, their Deployments,
Services, routes (HTTPRoutes or Ingresses, as the settings route), autoscalers (HPAs or KEDA
ScaledObjects) and pods; every event updates the operator's
:class:`~cortex.operator.cache.Cache` and wakes its API in the work queue
(:class:`~cortex.operator.state.State`). One pass (:func:`reconcile`) then:

1. reads the resource from the cache (gone: everything kept for it is dropped); the first pass
   in a namespace lists its APIs, children and pods once (what a restart needs to know), and
   so does the next one after kopf relisted (:mod:`cortex.operator.listing`);
2. parses the spec and renders the children (cached per generation and replica count); a spec
   that does not parse is status ``error`` (InvalidSpec), not retried until the spec changes;
   an API whose host and path an older API claims gets no route (``RouteConflict``,
   :mod:`cortex.operator.routing`);
3. applies (server-side apply, :mod:`cortex.operator.kube`) each child the cached live object
   does not already cover (:func:`cortex.operator.drift.covers`): nothing for a converged API,
   so a restarted operator writes nothing; a hand edit or a deleted child is an event, and the
   pass puts it back. A child missing from the cache is looked up first: a name taken by an
   object cortex does not own is an error (NameTaken), never taken over; before creating one
   again, the pass checks that the API still exists;
4. writes the status when it changed (:mod:`cortex.operator.status`), posting an Event when its
   word changed.

Failures: the API server refusing a child (400/403/422: admission, quota, RBAC) is status
``error (rejected)`` with its message, retried slowly (the cluster can be fixed); anything that
may heal by itself (5xx, 409, 429, timeouts) is retried with exponential backoff, never sooner
than a ``Retry-After`` asks. kopf persists nothing on the resources (event handlers need no
annotations, no finalizer): the children go with the resource through their ownerReferences.
Every ``resync`` seconds the cluster is listed again and every API woken, in case an event was
lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from cortex import contracts, errors
from cortex.contracts import APIState
from cortex.k8s import (
    AUTOSCALER_KINDS,
    CHILD_KINDS,
    LABEL_API_NAME,
    POD,
    ROUTE_KINDS,
    ChildKind,
    OperatorSettings,
    Owner,
    autoscaler_kind,
    render,
    rendered_kinds,
    route_kind,
)
from cortex.operator import drift, idle, kube, listing, routing, sleeper, status
from cortex.operator.cache import Key, Resource
from cortex.operator.state import RESYNC_SECONDS, RETRY_DELAY, STALL_AFTER, State
from cortex.spec import parse_api_spec

__all__ = ["Pass", "build_registry", "reconcile"]

logger = logging.getLogger(__name__)
_CHILDREN = {LABEL_API_NAME: kopf.PRESENT}
# Events on a change to these are Normal; any other state is worth a Warning.
_NORMAL_STATES = (APIState.LIVE, APIState.UPDATING, APIState.SCALED_TO_ZERO)
SLOW_RETRY = 60.0  # seconds before retrying what the API server refused
_ROUTE_KINDS = {kind.kind for kind in ROUTE_KINDS}


class NameTakenError(errors.TemporaryError):
    """A child's name is taken by an object cortex does not manage (heals when it is removed)."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _ref(namespace: str, name: str, uid: str) -> kopf.RawBody:
    """Enough of a resource for kopf to post Events about it."""
    meta = {"name": name, "namespace": namespace, "uid": uid}
    ref = {"apiVersion": contracts.API_VERSION, "kind": contracts.KIND, "metadata": meta}
    return ref  # type: ignore[return-value]


def _log(level: int, ref: kopf.RawBody, message: str, *args: Any) -> None:
    """Log about one API: kopf's JSON log format shows it as the record's ``object``."""
    meta = ref["metadata"]
    about = {"apiVersion": ref["apiVersion"], "kind": ref["kind"], **meta}
    # k8s_skip: not an Event (kopf would post a record of its own object loggers as one)
    logger.log(level, message, *args, extra={"k8s_ref": about, "k8s_skip": True})


def _owned_by(body: Mapping[str, Any], uid: str) -> bool:
    refs = body.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


class Pass:
    """The reconcile pass of one API, bound to the operator's state; renders once per spec."""

    def __init__(self, state: State, slow_retry: float) -> None:
        self.state = state
        self.slow_retry = slow_retry
        self.rendered: dict[Key, tuple[Any, Any]] = {}
        self.listings: dict[str | None, asyncio.Future[None]] = {}

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
        return list(cached[1])

    async def prime(self, namespace: str) -> None:
        """List the APIs, labelled children and pods of a namespace (of all: cluster-wide)
        once, until :meth:`State.relist`; the passes that need it meanwhile wait for that one
        listing. What it finds gone, it drops, and wakes the APIs concerned."""
        cache = self.state.cache
        scope = namespace if self.state.settings.namespace else None
        if scope in cache.primed:
            return
        future = self.listings.get(scope)
        if future is None:
            future = self.listings[scope] = asyncio.ensure_future(self._list(scope))
        try:
            await asyncio.shield(future)
        except errors.TemporaryError:
            self.listings.pop(scope, None)  # the next pass lists again
            raise
        cache.primed.add(scope)
        self.listings.pop(scope, None)

    async def _list(self, scope: str | None) -> None:
        for key in await listing.snapshot(self.state.kube(), self.state.cache, scope):
            if key not in self.state.cache.apis:
                _drop_unseen(self.state, key)
            self.state.wake(key)

    def forget(self, key: Key) -> None:
        """Drop what is kept for an API that is not (or no more) there. Its cached children
        stay: they may have been listed before the API itself; their deletion drops them."""
        self.rendered.pop(key, None)
        self.state.forget(key)


async def reconcile(run: Pass, key: Key) -> float | None:
    """One pass over one API; returns seconds until the next pass is due, None if none is."""
    state = run.state
    resource = state.cache.apis.get(key)
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
    if _conflict(state, key, resource) is not None:  # the older API keeps the route
        children = [child for child in children if child["kind"] not in _ROUTE_KINDS]
    owner = listing.Owner(state.kube, key, resource.uid)
    try:
        await run.prime(namespace)
        if key not in state.cache.apis:  # the listing found it gone
            run.forget(key)
            return None
        kinds = {child["kind"] for child in children}
        # An old autoscaler goes first: two would fight (see cortex.k8s.kinds).
        changed = await _prune(state, key, resource, kinds, AUTOSCALER_KINDS)
        changed += [await _ensure(state, key, resource, child, owner) for child in children]
        changed += await _prune(state, key, resource, kinds, CHILD_KINDS)
    except listing.OwnerGoneError:
        _log(logging.INFO, ref, "%s/%s: deleted, no watch event said so; forgotten", *key)
        _drop_unseen(state, key)
        run.forget(key)
        return None
    except kube.RejectedError as exc:
        reason = exc.reason if exc.reason.isalpha() else "Rejected"  # Forbidden, Invalid, ...
        await _fail(state, key, ref, resource, str(exc), APIState.ERROR_REJECTED, reason)
        return run.slow_retry
    except NameTakenError as exc:
        await _fail(state, key, ref, resource, str(exc), APIState.ERROR, "NameTaken")
        return run.slow_retry
    except errors.TemporaryError as exc:
        _log(logging.WARNING, ref, "%s/%s: %s; retrying", namespace, name, exc)
        return state.backoff(key, kube.retry_after(exc))
    done = [what for what in changed if what]
    if done:
        _log(logging.INFO, ref, "%s/%s: %s", namespace, name, ", ".join(done))
        repaired = [what for what in done if what.endswith("repaired")]
        if repaired:
            text = f"put back what was changed by hand: {', '.join(repaired)}"
            kopf.event(kopf.Body(ref), type="Warning", reason="DriftRepaired", message=text)
    state.seen[key] = resource.signature
    state.failures.pop(key, None)
    try:
        return await publish(state, key, resource)
    except errors.TemporaryError as exc:
        _log(logging.WARNING, ref, "%s/%s: status not written: %s; retrying", namespace, name, exc)
        return state.backoff(key, kube.retry_after(exc))


def _drop_unseen(state: State, key: Key) -> None:
    """Drop an API deleted without a watch event saying so from the cache, and free its route's
    claim for the others."""
    state.cache.apis.pop(key, None)
    for other in state.claims.update(key, None, ""):
        state.wake(other)


async def _ensure(
    state: State, key: Key, resource: Resource, child: dict[str, Any], owner: listing.Owner
) -> str:
    """Apply one child unless its live object covers it; returns what was done ('' if nothing)."""
    kind = child["kind"]
    live = state.cache.child(kind, key)
    if live is not None and not _owned_by(live, resource.uid):
        live = None  # an old owner's leftover, or ours under a stale cache: look it up
    desired = {k: v for k, v in child.items() if k not in ("apiVersion", "kind")}  # not in lists
    if live is not None and drift.covers(live, desired):
        return ""
    client = state.kube()
    if live is None:
        found = await client.get(child)
        if found is not None and not _owned_by(found, resource.uid):
            _refuse(found, f"{kind} {key[0]}/{child['metadata']['name']}")
        if found is not None and drift.covers(found, desired):
            return ""
        if found is None and state.seen.get(key) == resource.signature:
            await owner.check()  # re-created: was the API deleted unseen? (a new one was not)
    await client.apply(child)
    state.metrics.applies[kind] += 1
    if live is None:
        return f"{kind} created"
    return f"{kind} updated" if state.seen.get(key) != resource.signature else f"{kind} repaired"


async def _prune(
    state: State, key: Key, resource: Resource, rendered: set[str], among: tuple[ChildKind, ...]
) -> list[str]:
    """Delete the API's objects of kinds ``among`` it no longer renders (a change of settings,
    or of the spec: the PodDisruptionBudget of an API whose min_replicas dropped to 1)."""
    done = []
    for child in among:
        live = state.cache.child(child.kind, key)
        if child.kind in rendered or live is None or not _owned_by(live, resource.uid):
            continue
        await state.kube().delete(live, child.api_version, child.kind)
        state.cache.observe_child(child.kind, "DELETED", live)
        state.metrics.deletes[child.kind] += 1
        done.append(f"{child.kind} deleted")
    return done


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


def _conflict(state: State, key: Key, resource: Resource) -> str | None:
    """What the route of ``key`` clashes with, when an older API claims its host and path."""
    holder = state.claims.holder(key)
    if holder is None or resource.facts.claim is None:
        return None
    return routing.conflict_message(resource.facts.claim, holder)


def _claim(settings: OperatorSettings, resource: Resource | None) -> tuple[str, str] | None:
    if resource is None or settings.routing == "none":
        return None
    return resource.facts.claim


async def publish(state: State, key: Key, resource: Resource) -> float | None:
    """Recompute the status of one API from the cache and write it if it changed."""
    facts = resource.facts
    if not facts.valid:
        return None
    cache = state.cache
    deployment = cache.child("Deployment", key)
    summary = status.summarize(
        None if deployment is None else status.DeploymentFacts.of(deployment),
        cache.pod_facts(key),
        _autoscaler_facts(state, key),
        min_replicas=max(facts.min_replicas, 1),  # waking from zero is not live yet
        init_replicas=facts.init_replicas,
        now=_now(),
        stall_after=state.stall_after,
    )
    kind = route_kind(state.settings)
    route = None if kind is None else cache.child(kind.kind, key)
    conflict = _conflict(state, key, resource)
    routed = routing.routed(state.settings, key[1], None if conflict else route, conflict)
    summary = routing.with_route(summary, routed)
    if facts.scale_to_zero_after is not None:
        asleep = deployment is not None and summary.requested == 0
        cold = idle.condition(asleep, state.idle.woken.get(key), state.idle.cold_start.get(key))
        summary = dataclasses.replace(summary, conditions=(*summary.conditions, cold))
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
    if facts.scale_to_zero_after is None or deployment is None:
        return summary.recheck_in
    due = await sleeper.check(state, key, resource, facts.scale_to_zero_after)
    soonest = [t for t in (due, summary.recheck_in) if t is not None]
    return min(soonest) if soonest else None


def _autoscaler_facts(state: State, key: Key) -> status.HPAFacts | None:
    """What the API's autoscaler of the rendered kind says (None: not there yet)."""
    kind = autoscaler_kind(state.settings)
    body = state.cache.child(kind.kind, key)
    if body is None:
        return None
    if kind.kind == "ScaledObject":
        return status.HPAFacts.of_scaled_object(body)
    return status.HPAFacts.of(body)


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
    state.metrics.errors[reason] += 1
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
        _log(logging.WARNING, ref, "%s/%s: status not written: %s", *key, exc)


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
    run = Pass(state, slow_retry)
    cache = state.cache

    def start() -> None:
        """Start the work queue (on the first event: it needs kopf's running loop)."""
        if not state.serving:
            state.serve(run, lambda: list(cache.apis))

    @kopf.on.login(id="login", registry=registry)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        if info is not None:
            await state.connect(info)
        return info

    @kopf.on.cleanup(id="close", registry=registry)
    async def close(**_: Any) -> None:
        await state.close()

    resource = (contracts.GROUP, contracts.VERSION, contracts.PLURAL)

    @kopf.on.event(*resource, id="api", registry=registry)
    async def api_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
        start()
        meta = body["metadata"]
        if type is None and cache.primed and (meta["namespace"], meta["name"]) in cache.apis:
            state.relist()  # kopf lists again (its watch expired): some deletions went unsaid
        key = cache.observe_api(type, body)
        seen = cache.apis.get(key)
        created = str(body["metadata"].get("creationTimestamp") or "")
        for other in state.claims.update(key, _claim(settings, seen), created):
            state.wake(other)  # the holder of a route they share may have changed
        if seen is None or state.seen.get(key) != seen.signature:
            state.wake(key)

    for child in (*rendered_kinds(settings), POD):
        kopf.on.event(
            child.group,
            child.version,
            child.plural,
            id=child.plural,
            labels=_CHILDREN,
            registry=registry,
        )(_child_changed(state, child.kind, start))

    return registry


def _child_changed(state: State, kind: str, start: Any) -> Any:
    """An event handler that caches a child (or pod) and wakes the API it belongs to."""

    async def handler(type: str | None, body: kopf.Body, **_: Any) -> None:
        start()
        state.wake(state.cache.observe_child(kind, type, body))

    return handler
