"""Renders the KEDA ``ScaledObject`` (``keda.sh/v1alpha1``) of an API. No I/O here.

With the ``keda`` autoscaler (the operator's settings) KEDA scales the ``RealtimeAPI``'s own
``/scale`` subresource, as the HPA of :mod:`cortex.k8s.hpa` does: KEDA makes an HPA of its own
(``keda-hpa-api-<name>``) on an external metric it serves from this Prometheus trigger:

- the query (:func:`in_flight_query`) is the runtime's ``cortex_in_flight_requests`` gauge of
  this API's pods (the runtime's ``api_name`` label and the scrape's ``namespace`` label: two
  same-named APIs in two namespaces never mix), each pod's series averaged over the spec's
  ``autoscaling.window`` and summed: the API's average total in-flight requests, Cortex's metric;
- ``metricType: AverageValue`` with ``threshold`` = ``target_replica_concurrency``: the HPA
  divides that total by the replicas, so it keeps the average in-flight requests per pod at the
  target (``desired = ceil(total / target)``, Cortex's formula);
- ``minReplicaCount``/``maxReplicaCount`` are the spec's bounds, and
  ``advanced.horizontalPodAutoscalerConfig.behavior`` is :func:`cortex.k8s.hpa.behavior`:
  Cortex's step limits and stabilization windows, the same as the plain HPA's.

With ``min_replicas: 0``, ``minReplicaCount`` is 1 and :func:`cortex.k8s.render` renders the
ScaledObject only while the API has replicas: KEDA sets a target below ``minReplicaCount``
back to it, and would undo every scale to zero of the operator (docs/decisions.md).

Needs KEDA and a Prometheus that scrapes the API pods (``settings.prometheus_url``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cortex import contracts
from cortex.k8s import context, hpa, kinds, labels
from cortex.spec import RealtimeAPI, units

__all__ = ["in_flight_query", "render_scaled_object"]


def _selector(pairs: dict[str, str]) -> str:
    # Label values are DNS names here, but quote them as PromQL strings all the same.
    return ",".join(f'{key}="{value}"' for key, value in pairs.items())


def _number(value: float) -> str:
    """KEDA reads ``threshold`` with Go's ParseFloat: ``2.5``, never a quantity's ``2500m``."""
    return format(Decimal(str(value)).normalize(), "f")


def in_flight_query(api: RealtimeAPI, namespace: str) -> str:
    """PromQL: the API's in-flight requests, each pod averaged over ``autoscaling.window``;
    for an API that may scale to zero, plus the requests the activators hold for it (each
    side ``or vector(0)``: a sum over no series is no value, not 0)."""
    selector = _selector({"namespace": namespace, contracts.MetricLabel.API_NAME: api.name})
    window = units.format_duration(api.autoscaling.window)
    pods = f"sum(avg_over_time({contracts.Metric.IN_FLIGHT}{{{selector}}}[{window}]))"
    if not api.scales_to_zero:
        return pods
    held = _selector(
        {contracts.MetricLabel.API_NAMESPACE: namespace, contracts.MetricLabel.API_NAME: api.name}
    )
    activators = f"sum(avg_over_time({contracts.Metric.HELD}{{{held}}}[{window}]))"
    return f"({pods} or vector(0)) + ({activators} or vector(0))"


def render_scaled_object(
    api: RealtimeAPI, owner: context.Owner, settings: context.OperatorSettings
) -> dict[str, Any]:
    """The ScaledObject ``api-<name>`` scaling the ``RealtimeAPI`` on in-flight requests."""
    scaling = api.autoscaling
    kind = kinds.SCALED_OBJECT
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": labels.metadata(api, owner),
        "spec": {
            "scaleTargetRef": labels.scale_target(owner),
            "minReplicaCount": max(scaling.min_replicas, 1),
            "maxReplicaCount": scaling.max_replicas,
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": hpa.behavior(scaling, settings)},
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "in-flight-requests",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": settings.prometheus_url,
                        "query": in_flight_query(api, owner.namespace),
                        "threshold": _number(api.target_replica_concurrency),
                    },
                }
            ],
        },
    }
