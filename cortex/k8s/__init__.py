"""Kubernetes manifests of an API: spec in, plain dicts out. Pure: no cluster I/O.

``render(api, owner, settings)`` gives the children of one ``RealtimeAPI`` resource, in the
order to apply them: Deployment, Service, the route of the settings' ``routing`` (an HTTPRoute,
an Ingress or none), the autoscaler of the settings' ``autoscaler`` (an HPA,
``autoscaling/v2``, or KEDA's ScaledObject: none for an API asleep at zero), and a
PodDisruptionBudget when ``min_replicas`` > 1. Every object is a JSON-serialisable dict with
a stable key order, the same for the same input.
``custom_resource_definition()`` gives the CustomResourceDefinition (``crd_yaml()`` its text).
The operator applies what these return; nothing here talks to a cluster.

Modules: ``context`` (settings, owner) <- ``kinds`` (the kinds rendered, where they are served)
and ``labels`` (names, labels, metadata, port) <- ``deployment``, ``service``, ``route``
(HTTPRoute), ``ingress``, ``hpa``, ``pdb`` (one object each) <- ``scaledobject`` (KEDA's, with
the HPA's behaviour); ``schema`` (pydantic -> structural schema) <- ``crd``. The names shared
with other packages come from :mod:`cortex.contracts`.
"""

from __future__ import annotations

from typing import Any

from cortex.k8s.context import Autoscaler, OperatorSettings, Owner
from cortex.k8s.crd import REPLICAS_FIELD, crd_yaml, custom_resource_definition
from cortex.k8s.deployment import PROJECT_ARCHIVE_KEY, PROJECT_DIR, SPEC_ENV, render_deployment
from cortex.k8s.hpa import IN_FLIGHT_METRIC, render_hpa
from cortex.k8s.ingress import render_ingress
from cortex.k8s.kinds import (
    AUTOSCALER_KINDS,
    CHILD_KINDS,
    POD,
    ROUTE_KINDS,
    ChildKind,
    autoscaler_kind,
    child_kind,
    rendered_kinds,
    route_kind,
)
from cortex.k8s.labels import ANNOTATION_SPEC_HASH, LABEL_API_KIND, LABEL_API_NAME, child_name
from cortex.k8s.pdb import render_pdb
from cortex.k8s.route import render_route
from cortex.k8s.scaledobject import render_scaled_object
from cortex.k8s.service import render_service
from cortex.spec import RealtimeAPI

__all__ = [
    "ANNOTATION_SPEC_HASH",
    "AUTOSCALER_KINDS",
    "CHILD_KINDS",
    "IN_FLIGHT_METRIC",
    "LABEL_API_KIND",
    "LABEL_API_NAME",
    "POD",
    "PROJECT_ARCHIVE_KEY",
    "PROJECT_DIR",
    "REPLICAS_FIELD",
    "ROUTE_KINDS",
    "SPEC_ENV",
    "Autoscaler",
    "ChildKind",
    "OperatorSettings",
    "Owner",
    "autoscaler_kind",
    "child_kind",
    "child_name",
    "crd_yaml",
    "custom_resource_definition",
    "render",
    "render_deployment",
    "render_hpa",
    "render_ingress",
    "render_pdb",
    "render_route",
    "render_scaled_object",
    "render_service",
    "rendered_kinds",
    "route_kind",
]


def render(
    api: RealtimeAPI, owner: Owner, settings: OperatorSettings, replicas: int | None = None
) -> list[dict[str, Any]]:
    """Deployment, Service, route, autoscaler and (``min_replicas`` > 1) PDB of ``api``, owned
    by the resource ``owner``.

    ``replicas``: the resource's ``spec.replicas`` (its /scale subresource), None until the
    autoscaler or ``kubectl scale`` set it (then ``init_replicas``). Raises
    :class:`cortex.errors.SpecError` when the HPA cannot work with this spec and these settings
    (CPU-based scaling without ``compute.cpu``), and ``ValueError`` when ``owner.name`` is not
    ``api.name``.
    """
    autoscalers: tuple[Any, ...] = (render_hpa,)
    if settings.autoscaler == Autoscaler.KEDA:
        # KEDA would scale an API at zero back to minReplicaCount: none while it sleeps.
        asleep = api.scales_to_zero and (api.init_replicas if replicas is None else replicas) == 0
        autoscalers = () if asleep else (render_scaled_object,)
    routes = {"gateway": (render_route,), "ingress": (render_ingress,), "none": ()}
    children = [
        render_deployment(api, owner, settings, replicas),
        *(
            renderer(api, owner, settings)
            for renderer in (render_service, *routes[settings.routing], *autoscalers)
        ),
    ]
    budget = render_pdb(api, owner, settings)  # API-dependent: pruned when min_replicas is 1
    return children if budget is None else [*children, budget]
