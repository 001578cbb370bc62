"""The I/O side of scaling idle APIs to zero (:mod:`cortex.operator.idle` has the rules).

:func:`check` runs at the end of each pass over an API with ``min_replicas: 0``: it notes a
wake (replicas 0 -> more), and while the API is awake it scrapes the activators and replicas
(their EndpointSlices say where they are), and writes ``replicas: 0`` once the API has been
idle for ``scale_to_zero_after``. It returns when to look again.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf

from cortex import contracts, errors
from cortex.k8s import Autoscaler, child_name
from cortex.operator import idle, kube
from cortex.operator.cache import Key, Resource
from cortex.operator.state import State

__all__ = ["check"]

logger = logging.getLogger(__name__)
SERVICE_NAME = "kubernetes.io/service-name"
KEDA_API_VERSION = "keda.sh/v1alpha1"


async def check(state: State, key: Key, resource: Resource, after: float) -> float | None:
    """Seconds until the API is due for another look (None: asleep, nothing to watch)."""
    replicas = resource.facts.init_replicas if resource.replicas is None else resource.replicas
    was = state.idle.replicas.get(key)
    state.idle.replicas[key] = replicas
    if replicas == 0:
        state.idle.forget(key)
        if was != 0:  # fell asleep, or first seen asleep: count the cold starts from here
            urls = await _sources(state, key)
            if urls is not None:
                state.idle.count_cold_starts(key, await idle.scrape(urls, *key))
        return None
    if was == 0:
        state.idle.woken[key] = datetime.datetime.now(datetime.UTC)
    urls = await _sources(state, key)
    activity = None if urls is None else await idle.scrape(urls, *key)
    idle_for = state.idle.observe(key, activity, state.clock())
    if idle_for < after:
        return min(state.idle_poll, after - idle_for) if activity else state.idle_poll
    await _sleep(state, key, resource, replicas, idle_for)
    return None


async def _endpoints(state: State, namespace: str, service: str, ready_only: bool) -> list[str]:
    path = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
    answer = await state.kube().request("GET", f"{path}?labelSelector={SERVICE_NAME}%3D{service}")
    urls = []
    for endpoint_slice in answer.get("items") or []:
        ports = endpoint_slice.get("ports") or []
        port = next((p for p in ports if p.get("name") == "http"), ports[0] if ports else None)
        for endpoint in endpoint_slice.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            wanted = conditions.get("ready") if ready_only else conditions.get("serving", True)
            if port is not None and wanted is not False and endpoint.get("addresses"):
                urls.append(f"http://{endpoint['addresses'][0]}:{port['port']}")
    return urls


async def _sources(state: State, key: Key) -> list[str] | None:
    """The activators and the API's replicas to scrape; None when no activator answers (the
    requests it holds would go unseen)."""
    activator = state.settings.activator
    if activator is None:
        return None
    try:
        activators = await _endpoints(state, activator[0], activator[1], ready_only=True)
        replicas = await _endpoints(state, key[0], child_name(key[1]), ready_only=False)
    except errors.TemporaryError as exc:
        logger.warning("%s/%s: cannot find the activators and replicas: %s", *key, exc)
        return None
    return [*activators, *replicas] if activators else None


async def _sleep(
    state: State, key: Key, resource: Resource, replicas: int, idle_for: float
) -> None:
    """Scale to 0 with a precondition; KEDA's ScaledObject goes first (see the module)."""
    client = state.kube()
    if state.settings.autoscaler == Autoscaler.KEDA:
        # Not only the cached one: a ScaledObject applied a moment ago may not have reached
        # the watch yet, and one left behind would scale the API straight back to 1.
        named = {"namespace": key[0], "name": child_name(key[1])}
        scaled = state.cache.child("ScaledObject", key) or await client.get(
            {"apiVersion": KEDA_API_VERSION, "kind": "ScaledObject", "metadata": named}
        )
        if scaled is not None:
            await client.delete(scaled, KEDA_API_VERSION, "ScaledObject")
    path = kube.object_path(contracts.API_VERSION, contracts.KIND, *key, subresource="scale")
    scale: dict[str, Any] = await client.request("GET", path)
    unset = resource.replicas is None  # its /scale says 0 then; the Deployment has init_replicas
    if not unset and (scale.get("spec") or {}).get("replicas") != replicas:
        return  # changed since the pass read it: the next pass decides again
    scale.setdefault("spec", {})
    scale["spec"]["replicas"] = 0
    try:
        written: dict[str, Any] = await client.request("PUT", path, scale)
    except kube.ConflictError:
        logger.info("%s/%s: a wake raced the scale to zero; it stays awake", *key)
        return
    # The deleted ScaledObject's watch event may come before the API's: the pass it starts
    # must see 0 replicas, or it applies the ScaledObject again and KEDA scales back to 1.
    state.cache.wrote_replicas(key, 0, written)
    state.idle.forget(key)
    message = f"no request for {idle_for:.0f}s: scaled to 0 replicas"
    logger.info("%s/%s: %s", *key, message)
    meta = {"name": key[1], "namespace": key[0], "uid": resource.uid}
    ref: Any = {"apiVersion": contracts.API_VERSION, "kind": contracts.KIND, "metadata": meta}
    kopf.event(kopf.Body(ref), type="Normal", reason="ScaledToZero", message=message)
