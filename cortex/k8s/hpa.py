"""Renders the HPA (``autoscaling/v2``) that reproduces Cortex's autoscaler. No I/O here.

With the ``hpa`` autoscaler (the operator's settings) the metric is
``cortex_in_flight_requests_avg`` per pod (:data:`IN_FLIGHT_METRIC`, from
:class:`cortex.contracts.Metric`): the runtime's ``cortex_in_flight_requests`` gauge averaged
over a window by the prometheus-adapter rule in ``deploy/prometheus-adapter/values.yaml`` (its
own name, because the adapter's default catch-all rule already exposes the raw gauge). Target:
``averageValue`` = ``target_replica_concurrency``. With ``cpu`` the HPA scales on CPU
utilisation instead (:data:`CPU_TARGET_UTILIZATION` percent of the CPU request, which must
then be set). With ``keda`` KEDA makes the HPA (:mod:`cortex.k8s.scaledobject`), with the same
:func:`behavior`.

``behavior`` reproduces Cortex's step limits (notes/autoscaling.md section 1.3): each sync (15 s)
may scale up to ``ceil(cur * max_upscale_factor)`` or by one pod, whichever is more, and down to
``floor(cur * max_downscale_factor)`` or by one pod; the stabilization windows are the spec's
periods (at most 1 h, the HPA's limit). Percentages are whole numbers >= 1, so factors such as
1.333 round to the nearest percent. Per-HPA tolerances exist only from Kubernetes 1.35 and are
emitted only when the settings say so; otherwise the cluster-wide 10 % applies.

What this HPA cannot do: ``autoscaling.window`` (the adapter rule's window is fixed; KEDA's query
honours it), and scaling to zero: with ``min_replicas: 0`` its ``minReplicas`` is 1, and it does
nothing while the API is at zero (the HPA's ``ScalingDisabled``); the activator wakes the API and
the operator puts it to sleep (docs/scale-to-zero.md).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cortex import contracts, errors
from cortex.k8s import context, labels
from cortex.spec import Autoscaling, RealtimeAPI

__all__ = [
    "CPU_TARGET_UTILIZATION",
    "IN_FLIGHT_METRIC",
    "MAX_STABILIZATION_SECONDS",
    "POLICY_PERIOD_SECONDS",
    "behavior",
    "quantity",
    "render_hpa",
]

# The plain string: manifests are dumped as YAML, which knows no str subclasses.
IN_FLIGHT_METRIC = contracts.Metric.IN_FLIGHT_AVG.value
CPU_TARGET_UTILIZATION = 80
POLICY_PERIOD_SECONDS = 15
MAX_STABILIZATION_SECONDS = 3600


def quantity(value: float) -> str:
    """A number as a Kubernetes quantity: ``1`` -> ``"1"``, ``2.5`` -> ``"2500m"``."""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return str(int(number))
    milli = number * 1000
    if milli == milli.to_integral_value():
        return f"{int(milli)}m"
    return format(number.normalize(), "f")


def _percent(fraction: Decimal) -> int:
    return max(1, int((fraction * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def _window(seconds: float) -> int:
    return min(MAX_STABILIZATION_SECONDS, math.ceil(seconds))


def _rules(percent: int, window: float, tolerance: float | None) -> dict[str, Any]:
    rules: dict[str, Any] = {
        "stabilizationWindowSeconds": _window(window),
        "selectPolicy": "Max",
        "policies": [
            {"type": "Percent", "value": percent, "periodSeconds": POLICY_PERIOD_SECONDS},
            {"type": "Pods", "value": 1, "periodSeconds": POLICY_PERIOD_SECONDS},
        ],
    }
    if tolerance is not None:
        rules["tolerance"] = quantity(tolerance)
    return rules


def behavior(scaling: Autoscaling, settings: context.OperatorSettings) -> dict[str, Any]:
    """The HPA's ``behavior``: Cortex's step limits and stabilization windows."""
    up = _percent(Decimal(str(scaling.max_upscale_factor)) - 1)
    down = _percent(1 - Decimal(str(scaling.max_downscale_factor)))
    tolerances = settings.hpa_tolerance
    return {
        "scaleUp": _rules(
            up,
            scaling.upscale_stabilization_period,
            scaling.upscale_tolerance if tolerances else None,
        ),
        "scaleDown": _rules(
            down,
            scaling.downscale_stabilization_period,
            scaling.downscale_tolerance if tolerances else None,
        ),
    }


def _metric(api: RealtimeAPI, settings: context.OperatorSettings) -> dict[str, Any]:
    if settings.autoscaler != context.Autoscaler.CPU:
        target = api.target_replica_concurrency
        return {
            "type": "Pods",
            "pods": {
                "metric": {"name": IN_FLIGHT_METRIC},
                "target": {"type": "AverageValue", "averageValue": quantity(target)},
            },
        }
    if api.compute.cpu is None:
        raise errors.SpecError(
            f"api '{api.name}': compute.cpu is null, but this cluster's operator runs with the "
            "cpu autoscaler, which scales on CPU utilisation and needs a CPU request; set "
            "compute.cpu (e.g. 200m)"
        )
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": CPU_TARGET_UTILIZATION},
        },
    }


def render_hpa(
    api: RealtimeAPI, owner: context.Owner, settings: context.OperatorSettings
) -> dict[str, Any]:
    """The HorizontalPodAutoscaler ``api-<name>`` scaling the ``RealtimeAPI`` itself.

    It writes the resource's ``/scale`` (``spec.replicas``), which the operator passes on to the
    Deployment: one writer of the Deployment's replicas, and ``kubectl scale rapi`` or KEDA can
    take the HPA's place.

    Raises :class:`cortex.errors.SpecError` when the HPA would scale on CPU utilisation
    (``settings.autoscaler`` ``cpu``) and ``compute.cpu`` is null: nothing to measure against.
    """
    scaling = api.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": labels.metadata(api, owner),
        "spec": {
            "scaleTargetRef": labels.scale_target(owner),
            "minReplicas": max(scaling.min_replicas, 1),
            "maxReplicas": scaling.max_replicas,
            "metrics": [_metric(api, settings)],
            "behavior": behavior(scaling, settings),
        },
    }
