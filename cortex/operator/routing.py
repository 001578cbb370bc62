"""How an API is routed, and whether it can be: the ``Routed`` condition and route claims. Pure.

``Routed`` (on APIs the operator routes: ``CORTEX_OPERATOR_ROUTING`` ``gateway`` or ``ingress``):

- ``gateway``: from the HTTPRoute's ``status.parents[]`` entry for our Gateway, as its controller
  wrote it for the route's current generation: ``True`` when ``Accepted`` and ``ResolvedRefs``
  are; ``False`` with the controller's reason and message when one is not (``NoMatchingParent``:
  no such Gateway; ``NotAllowedByListeners``: its listeners do not take routes from this
  namespace; ``BackendNotFound``: no Service); ``Unknown`` (``RoutePending``) until it reports.
- ``ingress``: ``True`` once the Ingress exists (Ingress controllers report no conditions).
- either: ``False`` (``RouteConflict``) when an older API claims the same host and path.

The word stays what the pods say (``live`` when they serve: the API answers inside the cluster
at ``api-<name>:8888``), and a route that is not accepted adds its reason to the message; a route
conflict is an error (``error``, Ready's reason ``RouteConflict``): the API has no route.

:class:`Claims` knows which APIs claim each (host, path): the oldest (by ``creationTimestamp``,
then namespace and name) holds it, the others get no route and the conflict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cortex.contracts import APIState
from cortex.k8s import OperatorSettings, child_name
from cortex.operator import status
from cortex.operator.status import Condition, Summary

__all__ = ["CONFLICT", "PENDING", "ROUTED", "Claims", "conflict_message", "routed", "with_route"]

ROUTED = "Routed"
CONFLICT = "RouteConflict"
PENDING = "RoutePending"
Key = tuple[str, str]  # (namespace, name) of a RealtimeAPI
Claim = tuple[str, str]  # (host, "" for any; path)
Rank = tuple[str, str, str]  # (creationTimestamp, namespace, name): the smallest holds a claim
Body = Mapping[str, Any]


class Claims:
    """The (host, path) each API's route claims, and who holds each claim."""

    def __init__(self) -> None:
        self._holders: dict[Claim, dict[Key, Rank]] = {}
        self._of: dict[Key, Claim] = {}

    def update(self, key: Key, claim: Claim | None, created: str) -> set[Key]:
        """Record the claim of ``key`` (None: it claims nothing, e.g. it is gone); returns the
        other APIs that shared its old or new claim, whose holder may have changed."""
        old = self._of.pop(key, None)
        if old is not None:
            holders = self._holders[old]
            del holders[key]
            if not holders:
                del self._holders[old]
        if claim is not None:
            self._holders.setdefault(claim, {})[key] = (created, *key)
            self._of[key] = claim
        if old == claim:
            return set()
        return {
            other
            for shared in (old, claim)
            if shared is not None
            for other in self._holders.get(shared, {})
            if other != key
        }

    def holder(self, key: Key) -> Key | None:
        """The API that holds the claim of ``key``, when it is another one."""
        claim = self._of.get(key)
        if claim is None:
            return None
        holders = self._holders[claim]
        first = min(holders, key=holders.__getitem__)
        return None if first == key else first


def conflict_message(claim: Claim, holder: Key) -> str:
    host, path = claim
    where = f"{path or '/'} on host {host}" if host else f"{path or '/'} (any host)"
    return (
        f"networking.endpoint {where} is already routed to the older API {holder[0]}/{holder[1]}; "
        "change networking.endpoint or networking.hostname of one of them"
    )


def _parent_status(route: Body, gateway: tuple[str, str]) -> Body:
    namespace = route["metadata"].get("namespace", "")
    for parent in (route.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        if (ref.get("namespace") or namespace, ref.get("name")) == gateway:
            return dict(parent)
    return {}


def _gateway_condition(route: Body | None, gateway: tuple[str, str]) -> Condition:
    where = f"{gateway[0]}/{gateway[1]}"
    if route is None:
        return Condition(ROUTED, "Unknown", PENDING, "creating the HTTPRoute")
    name = route["metadata"]["name"]
    generation = route["metadata"].get("generation", 1)
    conditions = [
        c
        for c in _parent_status(route, gateway).get("conditions") or []
        if c.get("observedGeneration", generation) >= generation
    ]
    accepted = Condition.find(conditions, "Accepted")
    resolved = Condition.find(conditions, "ResolvedRefs")
    if accepted is None or resolved is None:
        message = (
            f"no controller of Gateway {where} has reported on HTTPRoute {name} yet "
            "(is the Gateway there, with a running controller?)"
        )
        return Condition(ROUTED, "Unknown", PENDING, message)
    if accepted.status != "True":
        message = f"Gateway {where} does not accept HTTPRoute {name}: {accepted.message}"
        return Condition(ROUTED, "False", accepted.reason or "NotAccepted", message)
    if resolved.status != "True":
        message = f"HTTPRoute {name} on Gateway {where}: {resolved.message}"
        return Condition(ROUTED, "False", resolved.reason or "RefsNotResolved", message)
    return Condition(ROUTED, "True", "Accepted", f"Gateway {where} accepted HTTPRoute {name}")


def routed(
    settings: OperatorSettings, api_name: str, route: Body | None, conflict: str | None
) -> Condition | None:
    """The ``Routed`` condition of an API from its live route (None: not there yet); None when
    the operator does not route."""
    if settings.routing == "none":
        return None
    if conflict is not None:
        return Condition(ROUTED, "False", CONFLICT, conflict)
    if settings.routing == "gateway" and settings.gateway is not None:
        return _gateway_condition(route, settings.gateway)
    if route is None:
        return Condition(ROUTED, "Unknown", PENDING, "creating the Ingress")
    message = f"Ingress {child_name(api_name)} of class {settings.ingress_class} is there"
    return Condition(ROUTED, "True", "IngressCreated", message)


def with_route(summary: Summary, condition: Condition | None) -> Summary:
    """The summary with its ``Routed`` condition: a conflict makes it an ``error``, a route that
    is not accepted adds to the message of a ``live`` API."""
    if condition is None:
        return summary
    ready, *others = summary.conditions
    if condition.reason == CONFLICT:
        ready = Condition(status.READY, "False", CONFLICT, condition.message)
        word, message = APIState.ERROR, condition.message
    else:
        word, message = summary.status, summary.message
        if condition.status == "False" and word == APIState.LIVE:
            message = "; ".join(filter(None, (message, condition.message)))
            ready = dataclasses.replace(ready, message=message)
    conditions = (ready, *others, condition)
    return dataclasses.replace(summary, status=word, message=message, conditions=conditions)
