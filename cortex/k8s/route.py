"""Renders the Gateway API HTTPRoute that routes an API's endpoint to its Service. No I/O here.

One rule, attached to the Gateway of the operator's settings (``CORTEX_OPERATOR_GATEWAY``): path
prefix ``networking.endpoint`` to ``api-<name>:8888``, for ``networking.hostname`` when the spec
names one (else every host the Gateway's listener accepts), with ``networking.timeout`` as the
rule's ``timeouts.request`` (the runtime answers 504 at the same moment, see docs/runtime.md).
No rewrite: the runtime answers a POST on any path.

An API that may scale to zero (``min_replicas: 0``) is routed to the activator's Service
instead (:func:`backend`, ``CORTEX_OPERATOR_ACTIVATOR``), which holds its requests while it
wakes: its timeout then also covers ``scale_from_zero_timeout``. An HTTPRoute may point at a
Service of another namespace when a ReferenceGrant there allows it (the chart makes it).

:func:`claim` is what a route claims, host and path, the same for the HTTPRoute and the Ingress:
two APIs with the same claim would fight over the same requests.
"""

from __future__ import annotations

from typing import Any

from cortex.k8s import context, labels
from cortex.spec import RealtimeAPI

__all__ = ["GATEWAY_GROUP", "backend", "claim", "render_route", "route_timeout", "timeout_text"]

GATEWAY_GROUP = "gateway.networking.k8s.io"


def claim(api: RealtimeAPI) -> tuple[str, str]:
    """(host, path) the API's route matches: ``""`` for any host; the path without a trailing
    slash, as Gateway API and Ingress prefixes match element by element (``/a/`` is ``/a``)."""
    return api.networking.hostname or "", api.endpoint.rstrip("/")


def timeout_text(seconds: float) -> str:
    """A Gateway API duration (``^([0-9]{1,5}(h|m|s|ms)){1,4}$``): whole seconds or milliseconds."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def backend(
    api: RealtimeAPI, owner: context.Owner, settings: context.OperatorSettings
) -> dict[str, Any]:
    """The Service the route sends to: the API's own, or the activator's (with its namespace
    when that is another one) for an API that may scale to zero."""
    namespace, name = labels.backend_service(api, owner, settings)
    found: dict[str, Any] = {"name": name, "port": labels.PORT}
    if namespace is not None:
        found["namespace"] = namespace
    return found


def route_timeout(api: RealtimeAPI) -> float:
    """Seconds the route waits for a response: the API's timeout, plus the time a request may
    be held while the API wakes."""
    held = api.autoscaling.scale_from_zero_timeout if api.scales_to_zero else 0.0
    return api.networking.timeout + held


def render_route(
    api: RealtimeAPI, owner: context.Owner, settings: context.OperatorSettings
) -> dict[str, Any]:
    """The ``gateway.networking.k8s.io/v1`` HTTPRoute ``api-<name>`` for the API's endpoint."""
    if settings.gateway is None:
        raise ValueError("render_route needs settings.gateway (routing 'gateway')")
    namespace, name = settings.gateway
    parent = {"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": namespace, "name": name}
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": api.endpoint}}],
        "backendRefs": [backend(api, owner, settings)],
        "timeouts": {"request": timeout_text(route_timeout(api))},
    }
    spec: dict[str, Any] = {"parentRefs": [parent]}
    if api.networking.hostname is not None:
        spec["hostnames"] = [api.networking.hostname]
    spec["rules"] = [rule]
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": labels.metadata(api, owner),
        "spec": spec,
    }
