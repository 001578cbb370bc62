"""Renders the Ingress that routes an API's endpoint to its Service. No I/O here.

One rule for ``networking.hostname`` (any host when the spec names none): path
``networking.endpoint`` (``Prefix``) to ``api-<name>:8888``. No rewrite: the runtime itself
answers ``POST <endpoint>``. The ingress class comes from the operator's settings
(``CORTEX_OPERATOR_INGRESS_CLASS``, required with routing ``ingress``). The request timeout is
the controller's business (its own annotations): Ingress has no field for it.

An API that may scale to zero is routed to the activator's Service, which must then live in
the API's namespace: an Ingress names no Service of another namespace.
"""

from __future__ import annotations

from typing import Any

from cortex import errors
from cortex.k8s import context, labels
from cortex.spec import RealtimeAPI

__all__ = ["render_ingress"]


def render_ingress(
    api: RealtimeAPI, owner: context.Owner, settings: context.OperatorSettings
) -> dict[str, Any]:
    """The ``networking.k8s.io/v1`` Ingress ``api-<name>`` for the API's endpoint."""
    if settings.ingress_class is None:
        raise ValueError("render_ingress needs settings.ingress_class (routing 'ingress')")
    namespace, service = labels.backend_service(api, owner, settings)
    if namespace is not None:
        raise errors.SpecError(
            f"api '{api.name}': autoscaling.min_replicas 0 with ingress routing needs the API "
            f"in the activator's namespace ({namespace}): an Ingress cannot reach a Service in "
            "another one; deploy it there, use gateway routing, or set min_replicas to 1"
        )
    backend = {"service": {"name": service, "port": {"number": labels.PORT}}}
    path = {"path": api.endpoint, "pathType": "Prefix", "backend": backend}
    rule: dict[str, Any] = {"http": {"paths": [path]}}
    if api.networking.hostname is not None:
        rule = {"host": api.networking.hostname, **rule}
    spec = {"ingressClassName": settings.ingress_class, "rules": [rule]}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": labels.metadata(api, owner),
        "spec": spec,
    }
