"""The kopf handlers: RealtimeAPI -> parse -> render -> apply -> status; children -> status.

``build_registry(settings)`` returns a fresh :class:`kopf.OperatorRegistry` (no global one):

- login: the in-cluster service account, else the kubeconfig (read when kopf logs in, so a
  ``KUBECONFIG`` set after import is honoured); the same credentials build our API client.
- create / update / resume of ``realtimeapis.cortex.dev``: :func:`reconcile`. A spec that does
  not parse (or render), or children the API server rejects, are permanent errors: status
  ``error`` with the message, no retries until the spec changes. A child name taken by an object
  cortex does not manage is an error too, retried slowly (it heals once that object is gone).
  Other API errors that may heal are retried by kopf.
- indexes of the resources, their Deployments and pods (label ``cortex.dev/api-name``), and
  event handlers on the Deployments and pods: every change recomputes the status from the
  indexes (:func:`publish`); nothing polls. An unschedulable pod sets a timer for the moment it
  counts as "compute unavailable".
- delete: optional, only forgets in-memory state, so no finalizer blocks deletion; the children
  go with the resource through their ownerReferences.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from cortex import contracts, errors
from cortex.k8s import LABEL_API_NAME, OperatorSettings, Owner, render
from cortex.operator import kube, status
from cortex.operator.state import RETRY_DELAY, Key, State
from cortex.spec import parse_api_spec

__all__ = ["Indexes", "build_registry", "publish", "reconcile"]

_CHILDREN = {LABEL_API_NAME: kopf.PRESENT}
# Events on a change to these are Normal; any other state is worth a Warning.
_NORMAL_STATES = (contracts.APIState.LIVE, contracts.APIState.UPDATING)
Index = Mapping[Key, Any]  # a kopf index: key -> collection of values
Logger = logging.Logger | logging.LoggerAdapter[Any]


@dataclass(frozen=True)
class Indexes:
    """kopf's live indexes of the resources, their Deployments and their pods."""

    apis: Index
    deployments: Index
    pods: Index

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> Indexes:
        """The indexes among a handler's keyword arguments (named after the index functions)."""
        return cls(kwargs["cortex_apis"], kwargs["cortex_deployments"], kwargs["cortex_pods"])


def _one(index: Index, key: Key) -> Any:
    return next(iter(index.get(key, ())), None)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _ref(namespace: str, name: str, uid: str) -> kopf.RawBody:
    """Enough of a resource for kopf to post Events about it."""
    meta = {"name": name, "namespace": namespace, "uid": uid}
    ref = {"apiVersion": contracts.API_VERSION, "kind": contracts.KIND, "metadata": meta}
    return ref  # type: ignore[return-value]


def _changed(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    return previous is None or any(previous.get(key) != value for key, value in new.items())


async def _write(
    state: State,
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
    state.written[meta["uid"]] = {**(previous or {}), **new}
    old, word = (previous or {}).get("status"), new["status"]
    if old != word:
        text = f"status {old or 'none'} -> {word}"
        if new.get("message"):
            text += f": {new['message']}"
        level = "Normal" if word in _NORMAL_STATES else "Warning"
        reason = new["conditions"][0]["reason"]
        kopf.event(kopf.Body(ref), type=level, reason=reason, message=text)


async def publish(
    state: State, namespace: str, name: str, indexes: Indexes, *, generation: int | None = None
) -> None:
    """Recompute the status of one API from the indexes and write it if it changed."""
    key = (namespace, name)
    facts: status.ApiFacts | None = _one(indexes.apis, key)
    if facts is None or not facts.valid:
        return
    async with state.lock(key):
        summary = status.summarize(
            _one(indexes.deployments, key),
            list(indexes.pods.get(key, ())),
            min_replicas=facts.min_replicas,
            init_replicas=facts.init_replicas,
            now=_now(),
            stall_after=state.stall_after,
        )
        previous = state.written.get(facts.uid, facts.status)
        new = status.render(summary, endpoint=facts.endpoint, previous=previous, now=_now())
        if generation is not None:
            new["observedGeneration"] = generation
        await _write(state, _ref(namespace, name, facts.uid), new, previous)
    if summary.recheck_in is not None:
        later(state, namespace, name, indexes, summary.recheck_in + 1.0)


def later(state: State, namespace: str, name: str, indexes: Indexes, delay: float) -> None:
    """Publish the status of one API again after ``delay`` seconds."""

    async def again() -> None:
        await publish(state, namespace, name, indexes)

    state.later((namespace, name), delay, again)


async def reconcile(state: State, body: kopf.Body, indexes: Indexes, logger: Logger) -> None:
    """Parse the resource's spec, render the children, create-or-patch them, write the status."""
    meta = body["metadata"]
    name, namespace, generation = meta["name"], meta["namespace"], meta["generation"]
    ref = _ref(namespace, name, meta["uid"])
    try:
        api = parse_api_spec(name, dict(body.get("spec") or {}))
        owner = Owner(name=name, namespace=namespace, uid=meta["uid"])
        children = render(api, owner, state.settings)
    except errors.SpecError as exc:
        await _fail(state, ref, generation, str(exc), "InvalidSpec", body.get("status"))
        raise kopf.PermanentError(str(exc)) from None
    try:
        results = [await state.kube().apply(child) for child in children]
    except errors.PermanentError as exc:
        await _fail(state, ref, generation, str(exc), "Rejected", body.get("status"))
        raise kopf.PermanentError(str(exc)) from None
    except kube.ForeignObjectError as exc:
        await _fail(state, ref, generation, str(exc), "NameTaken", body.get("status"))
        raise kopf.TemporaryError(str(exc), delay=state.retry_delay * 6) from None
    except errors.TemporaryError as exc:
        raise kopf.TemporaryError(str(exc), delay=state.retry_delay) from None
    done = [f"{c['kind']} {r}" for c, r in zip(children, results, strict=True) if r != "unchanged"]
    if done:
        logger.info("%s", ", ".join(done))
    try:
        await publish(state, namespace, name, indexes, generation=generation)
    except errors.TemporaryError as exc:
        raise kopf.TemporaryError(str(exc), delay=state.retry_delay) from None


async def _fail(
    state: State,
    ref: kopf.RawBody,
    generation: int,
    message: str,
    reason: str,
    current: Mapping[str, Any] | None,
) -> None:
    """Write status ``error`` with the reason; kopf then stops retrying until the spec changes."""
    meta = ref["metadata"]
    previous = state.written.get(meta["uid"], current or None)
    new = status.error_status(message, reason=reason, previous=previous, now=_now())
    new["observedGeneration"] = generation
    async with state.lock((meta["namespace"], meta["name"])):
        await _write(state, ref, new, previous)


def build_registry(
    settings: OperatorSettings,
    *,
    stall_after: float = status.STALL_AFTER,
    retry_delay: float = RETRY_DELAY,
) -> kopf.OperatorRegistry:
    """The operator's handlers, bound to one :class:`State`.

    ``stall_after``: seconds a pod may be unschedulable before ``compute unavailable``;
    ``retry_delay``: seconds before a reconcile that failed temporarily is tried again.
    """
    registry = kopf.OperatorRegistry()
    state = State(settings, stall_after=stall_after, retry_delay=retry_delay)
    resource = (contracts.GROUP, contracts.VERSION, contracts.PLURAL)

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
        return {_key(body): status.ApiFacts.of(body)}

    @kopf.index(
        "apps", "v1", "deployments", id="cortex_deployments", labels=_CHILDREN, registry=registry
    )
    def cortex_deployments(body: kopf.Body, **_: Any) -> dict[Key, Any]:
        return {_owner_key(body): status.DeploymentFacts.of(body)}

    @kopf.index("", "v1", "pods", id="cortex_pods", labels=_CHILDREN, registry=registry)
    def cortex_pods(body: kopf.Body, **_: Any) -> dict[Key, Any]:
        return {_owner_key(body): status.PodFacts.of(body)}

    @kopf.on.resume(*resource, id="reconcile", backoff=retry_delay, registry=registry)
    @kopf.on.create(*resource, id="reconcile", backoff=retry_delay, registry=registry)
    @kopf.on.update(*resource, id="reconcile", backoff=retry_delay, registry=registry)
    async def apply(body: kopf.Body, logger: Logger, **kwargs: Any) -> None:
        await reconcile(state, body, Indexes.of(kwargs), logger)

    @kopf.on.delete(*resource, id="forget", optional=True, registry=registry)
    def forget(body: kopf.Body, **_: Any) -> None:
        state.forget(_key(body), body["metadata"]["uid"])

    @kopf.on.event("apps", "v1", "deployments", id="status", labels=_CHILDREN, registry=registry)
    @kopf.on.event("", "v1", "pods", id="status", labels=_CHILDREN, registry=registry)
    async def child_changed(body: kopf.Body, **kwargs: Any) -> None:
        namespace, name = _owner_key(body)
        try:
            await publish(state, namespace, name, Indexes.of(kwargs))
        except errors.TemporaryError:
            later(state, namespace, name, Indexes.of(kwargs), state.retry_delay)

    return registry


def _key(body: kopf.Body) -> Key:
    return (body["metadata"]["namespace"], body["metadata"]["name"])


def _owner_key(body: kopf.Body) -> Key:
    """The RealtimeAPI a child belongs to, from its ``cortex.dev/api-name`` label."""
    return (body["metadata"]["namespace"], body["metadata"]["labels"][LABEL_API_NAME])
