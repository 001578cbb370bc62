"""Renders the Ingress that routes an API's endpoint to its Service. No I/O here.

One rule for any host: path ``networking.endpoint`` (``Prefix``) to ``api-<name>:8888``. No
rewrite: the runtime itself answers ``POST <endpoint>``. The ingress class comes from the
operator's settings; without one, the cluster's default class applies.
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
    spec: dict[str, Any] = {}
    if settings.ingress_class is not None:
        spec["ingressClassName"] = settings.ingress_class
    backend = {"service": {"name": labels.child_name(api.name), "port": {"number": labels.PORT}}}
    path = {"path": api.endpoint, "pathType": "Prefix", "backend": backend}
    spec["rules"] = [{"http": {"paths": [path]}}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": labels.metadata(api, owner),
        "spec": spec,
    }
