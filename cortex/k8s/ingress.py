"""Renders the Ingress that routes an API's endpoint to its Service. No I/O here.

One rule for ``networking.hostname`` (any host when the spec names none): path
``networking.endpoint`` (``Prefix``) to ``api-<name>:8888``. No rewrite: the runtime itself
answers ``POST <endpoint>``. The ingress class comes from the operator's settings
(``CORTEX_OPERATOR_INGRESS_CLASS``, required with routing ``ingress``). The request timeout is
the controller's business (its own annotations): Ingress has no field for it.
"""

from __future__ import annotations

from typing import Any

from cortex.k8s import context, labels
from cortex.spec import RealtimeAPI

__all__ = ["render_ingress"]


def render_ingress(
    api: RealtimeAPI, owner: context.Owner, settings: context.OperatorSettings
) -> dict[str, Any]:
    """The ``networking.k8s.io/v1`` Ingress ``api-<name>`` for the API's endpoint."""
    if settings.ingress_class is None:
        raise ValueError("render_ingress needs settings.ingress_class (routing 'ingress')")
    backend = {"service": {"name": labels.child_name(api.name), "port": {"number": labels.PORT}}}
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
