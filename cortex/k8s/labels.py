"""Names, labels and metadata that every child of a ``RealtimeAPI`` carries. No I/O here.

Children are named ``api-<name>`` (as in Cortex, where other APIs call
``http://api-<name>:8888``), live in the owner's namespace, carry the ``cortex.dev/*`` labels
and the spec hash, and point at the owner with a controller ``ownerReference``, so deleting the
resource deletes them (Kubernetes' garbage collector; no finalizer needed). The Deployment's
container and the Service share one port, :data:`PORT`, named :data:`PORT_NAME`.

The label and annotation names are :mod:`cortex.contracts`' (the CLI selects by them too),
re-exported here.
"""

from __future__ import annotations

from typing import Any

from cortex import contracts, errors
from cortex.k8s import context
from cortex.spec import RealtimeAPI, spec_hash

__all__ = [
    "ANNOTATION_SPEC_HASH",
    "LABEL_API_KIND",
    "LABEL_API_NAME",
    "LABEL_MANAGED_BY",
    "MANAGED_BY",
    "PORT",
    "PORT_NAME",
    "backend_service",
    "child_name",
    "labels",
    "metadata",
    "owner_reference",
    "scale_target",
    "selector",
]

LABEL_API_NAME = contracts.LABEL_API_NAME
LABEL_API_KIND = contracts.LABEL_API_KIND
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "cortex"
ANNOTATION_SPEC_HASH = contracts.ANNOTATION_SPEC_HASH
PORT = contracts.DEFAULT_PORT
PORT_NAME = "http"


def child_name(api_name: str) -> str:
    """The name of every object rendered for the API ``api_name``: ``api-<name>``."""
    return f"api-{api_name}"


def labels(api: RealtimeAPI) -> dict[str, str]:
    """The labels of every child and of the pods: API name and kind, managed by cortex."""
    return {LABEL_API_NAME: api.name, LABEL_API_KIND: api.kind, LABEL_MANAGED_BY: MANAGED_BY}


def selector(api: RealtimeAPI) -> dict[str, str]:
    """The pod selector of the Deployment and the Service (immutable, so kept to the name)."""
    return {LABEL_API_NAME: api.name}


def owner_reference(owner: context.Owner) -> dict[str, Any]:
    """A controller reference to the resource, blocking its foreground deletion until gone."""
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def scale_target(owner: context.Owner) -> dict[str, str]:
    """What an autoscaler scales: the ``RealtimeAPI`` itself, through its ``/scale``."""
    return {"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name}


def metadata(api: RealtimeAPI, owner: context.Owner) -> dict[str, Any]:
    """``metadata`` of a child: name, namespace, labels, spec hash, owner reference."""
    if owner.name != api.name:
        raise ValueError(f"owner {owner.name!r} is not the resource of api {api.name!r}")
    return {
        "name": child_name(api.name),
        "namespace": owner.namespace,
        "labels": labels(api),
        "annotations": {ANNOTATION_SPEC_HASH: spec_hash(api)},
        "ownerReferences": [owner_reference(owner)],
    }


def backend_service(
    api: RealtimeAPI, owner: context.Owner, settings: context.OperatorSettings
) -> tuple[str | None, str]:
    """(namespace, name) of the Service a route sends the API's requests to: ``api-<name>``,
    or for an API that may scale to zero the activator's (``CORTEX_OPERATOR_ACTIVATOR``); the
    namespace is None when it is the API's own."""
    if not api.scales_to_zero:
        return None, child_name(api.name)
    if settings.activator is None:
        raise errors.SpecError(
            f"api '{api.name}': autoscaling.min_replicas 0 needs the activator, which this "
            "operator was not given: install the chart with activator.enabled=true (it sets "
            "CORTEX_OPERATOR_ACTIVATOR), or set autoscaling.min_replicas to 1"
        )
    namespace, name = settings.activator
    return (None if namespace == owner.namespace else namespace), name
