"""Renders the ClusterIP Service in front of an API's replicas. No I/O here.

``api-<name>:8888`` inside the cluster, as in Cortex (``http://api-<name>:8888/predict``); the
port targets the container port by its name, ``http``.
"""

from __future__ import annotations

from typing import Any

from cortex.k8s import context, labels
from cortex.spec import RealtimeAPI

__all__ = ["render_service"]


def render_service(
    api: RealtimeAPI, owner: context.Owner, settings: context.OperatorSettings
) -> dict[str, Any]:
    """The ``v1`` Service ``api-<name>``: ClusterIP, port 8888 to the container's ``http``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": labels.metadata(api, owner),
        "spec": {
            "type": "ClusterIP",
            "selector": labels.selector(api),
            "ports": [
                {
                    "name": labels.PORT_NAME,
                    "port": labels.PORT,
                    "targetPort": labels.PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
