"""The activator's view of the cluster: one :class:`Door` per API that may scale to zero.

Fed by two informers (:mod:`cortex.activator.kube`): the RealtimeAPIs (what to route, the
gate's bounds) and the EndpointSlices labelled ``cortex.dev/api-name`` (which replicas are
ready, and where). Readiness comes from the EndpointSlices, what kube-proxy and the ingress
controllers use, not from the Deployment's ``readyReplicas``: a replica counts once its
address is routable. A Door's waker writes the RealtimeAPI's ``/scale`` (what the HPA and KEDA
scale) and then the Deployment's, so an API wakes even while the operator is down.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cortex import contracts
from cortex.activator import routes
from cortex.activator.clock import Clock
from cortex.activator.gate import Endpoint, Gate
from cortex.activator.waker import Waker
from cortex.k8s import child_name

__all__ = ["Door", "Doors"]

logger = logging.getLogger(__name__)
SERVICE_NAME = "kubernetes.io/service-name"
Scale = Callable[[str, int], Awaitable[bool]]  # path of a /scale, replicas -> written


def api_path(namespace: str, name: str) -> str:
    return f"/apis/{contracts.API_VERSION}/namespaces/{namespace}/{contracts.PLURAL}/{name}"


def deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{child_name(name)}"


@dataclass
class Door:
    """One API: its target (spec), its gate and its waker."""

    target: routes.Target
    gate: Gate
    waker: Waker


class Doors:
    """Every Door, kept up to date from the informers' events."""

    def __init__(
        self, clock: Clock, scale: Scale, on_cold_start: Callable[[routes.Key, float], None]
    ) -> None:
        self.clock = clock
        self.scale = scale
        self.on_cold_start = on_cold_start  # an API woke: (its key, seconds)
        self.doors: dict[routes.Key, Door] = {}
        self.slices: dict[routes.Key, dict[str, tuple[Endpoint, ...]]] = {}
        self.synced: set[str] = set()  # the informers that listed once

    def gates(self) -> dict[routes.Key, Gate]:
        return {key: door.gate for key, door in self.doors.items()}

    def match(self, host: str, path: str) -> Door | None:
        found = routes.match((d.target for d in self.doors.values()), host, path)
        return None if found is None else self.doors[found.key]

    def on_apis(self, type_: str, objects: list[dict[str, Any]]) -> None:
        if type_ == "SYNC":
            keep = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects}
            for key in set(self.doors) - keep:
                self._drop(key)
            self.synced.add("apis")
        for obj in objects:
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            target = None if type_ == "DELETED" else routes.target_of(obj)
            if target is None:
                self._drop(key)
            else:
                self._put(target)

    def on_slices(self, type_: str, objects: list[dict[str, Any]]) -> None:
        if type_ == "SYNC":
            self.slices.clear()
            self.synced.add("slices")
        touched = set()
        for obj in objects:
            meta = obj["metadata"]
            api = (meta.get("labels") or {}).get(contracts.LABEL_API_NAME, "")
            if (meta.get("labels") or {}).get(SERVICE_NAME) != child_name(api):
                continue  # another Service's slices, e.g. of a headless one
            key = (meta["namespace"], api)
            slices = self.slices.setdefault(key, {})
            if type_ == "DELETED":
                slices.pop(meta["name"], None)
            else:
                slices[meta["name"]] = _ready_endpoints(obj)
            touched.add(key)
        for key in touched if type_ != "SYNC" else set(self.doors) | touched:
            self._refresh(key)

    def _put(self, target: routes.Target) -> None:
        scaling = target.api.autoscaling
        door = self.doors.get(target.key)
        if door is None:
            gate = Gate(
                self.clock,
                max_concurrency=scaling.max_replica_concurrency,
                max_queue=scaling.max_queue_length,
            )
            waker = Waker(
                gate,
                functools.partial(self._wake, target.key),
                self.clock,
                target=target.api.target_replica_concurrency,
                max_replicas=scaling.max_replicas,
                name="/".join(target.key),
            )
            gate.on_cold = waker.start
            door = self.doors[target.key] = Door(target, gate, waker)
            self._refresh(target.key)
        door.target = target
        door.gate.max_concurrency = scaling.max_replica_concurrency
        door.gate.max_queue = scaling.max_queue_length
        door.waker.target = target.api.target_replica_concurrency
        door.waker.max_replicas = scaling.max_replicas

    def _drop(self, key: routes.Key) -> None:
        door = self.doors.pop(key, None)
        if door is not None:
            door.waker.stop()

    def _refresh(self, key: routes.Key) -> None:
        door = self.doors.get(key)
        if door is None:
            return
        ready = [e for endpoints in self.slices.get(key, {}).values() for e in endpoints]
        cold_start = door.gate.set_ready(ready)
        if cold_start is not None:
            self.on_cold_start(key, cold_start)
            logger.info("%s/%s: ready after a cold start of %.3f s", *key, cold_start)

    async def _wake(self, key: routes.Key, replicas: int) -> bool:
        """Scale the API from 0, then its Deployment if that is still at 0 (the operator passes
        the API's replicas on to it, but may be down or busy). True if the API's write did it."""
        woke = await self.scale(api_path(*key) + "/scale", replicas)
        await self.scale(deployment_path(*key) + "/scale", replicas)
        return woke


def _ready_endpoints(endpoint_slice: dict[str, Any]) -> tuple[Endpoint, ...]:
    ports = endpoint_slice.get("ports") or []
    port = next((p for p in ports if p.get("name") == "http"), ports[0] if ports else None)
    if port is None or port.get("port") is None:
        return ()
    return tuple(
        Endpoint(address, int(port["port"]))
        for endpoint in endpoint_slice.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready") is not False
        for address in (endpoint.get("addresses") or [])[:1]
    )
