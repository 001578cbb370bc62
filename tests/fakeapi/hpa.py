"""What the HorizontalPodAutoscaler controller writes in an ``autoscaling/v2`` status, for tests
to set: replica counts, the metrics it read, and the conditions ``AbleToScale``,
``ScalingActive`` and ``ScalingLimited`` in its words (``pkg/controller/podautoscaler``).

A condition is (status, reason, message). By default the HPA reads its metrics and wants what it
has; a ``scaling_active`` that is False (``FailedGetPodsMetric``, the adapter's error) is how an
autoscaler that cannot read its metric looks, and then there are no current metrics and no
``ScalingLimited``, as after the real controller failed to compute a count.
"""

from __future__ import annotations

from typing import Any

import kmock

from tests.fakeapi.conditions import Condition, conditions
from tests.fakeapi.store import Obj, Store

HPAS = kmock.resource("autoscaling/v2/horizontalpodautoscalers")


def set_status(
    store: Store,
    namespace: str,
    name: str,
    *,
    current: int | None = None,
    desired: int | None = None,
    scaling_active: Condition | None = None,
    able_to_scale: Condition | None = None,
    scaling_limited: Condition | None = None,
) -> Obj:
    """Write the HPA's status (``current`` defaults to its target's ``spec.replicas``,
    ``desired`` to ``current``); returns the HPA as stored."""
    kind = store.kinds[HPAS]
    hpa = store.find(kind, namespace, name)
    if hpa is None:
        raise LookupError(f"horizontalpodautoscaler {namespace}/{name} does not exist")
    spec = hpa.get("spec") or {}
    current = _target_replicas(store, namespace, spec) if current is None else current
    desired = current if desired is None else desired
    metrics = spec.get("metrics") or []
    active = scaling_active or (
        True,
        "ValidMetricFound",
        f"the HPA was able to successfully calculate a replica count from {_describe(metrics)}",
    )
    if able_to_scale is None:
        if desired != current:
            message = f"the HPA controller was able to update the target scale to {desired}"
            able_to_scale = (True, "SucceededRescale", message)
        elif active[0]:
            able_to_scale = (True, "ReadyForNewScale", "recommended size matches current size")
        else:
            message = "the HPA controller was able to get the target's current scale"
            able_to_scale = (True, "SucceededGetScale", message)
    wanted = {"AbleToScale": able_to_scale, "ScalingActive": active}
    if scaling_limited is not None or active[0]:
        wanted["ScalingLimited"] = scaling_limited or _limited(spec, desired)
    now = store.clock.stamp()
    before = (hpa.get("status") or {}).get("conditions") or []
    found = conditions(wanted, before, now)
    status: Obj = {"currentReplicas": current, "desiredReplicas": desired, "conditions": found}
    if active[0] and metrics:
        status["currentMetrics"] = [_zero(metric) for metric in metrics]
    if desired != current:
        status["lastScaleTime"] = now

    def change(obj: Obj) -> Obj:
        return {**obj, "status": status}

    return store.update(kind, namespace, name, change, subresource="status")


def _target_replicas(store: Store, namespace: str, spec: Obj) -> int:
    target = spec.get("scaleTargetRef") or {}
    for kind in store.kinds.values():
        if (kind.api_version, kind.kind) == (target.get("apiVersion"), target.get("kind")):
            obj = store.find(kind, namespace, target.get("name", ""))
            return int((obj or {}).get("spec", {}).get("replicas", 0))
    return 0


def _limited(spec: Obj, desired: int) -> Condition:
    if desired >= spec.get("maxReplicas", desired + 1):
        message = "the desired replica count is more than the maximum replica count"
        return (True, "TooManyReplicas", message)
    if desired <= spec.get("minReplicas", 1):  # an idle HPA at its minimum says so
        message = "the desired replica count is less than the minimum replica count"
        return (True, "TooFewReplicas", message)
    return (False, "DesiredWithinRange", "the desired count is within the acceptable range")


def _describe(metrics: list[Obj]) -> str:
    """How the controller names the metric it used: ``pods metric x``, ``cpu resource ...``."""
    if not metrics:
        return "cpu resource utilization (percentage of request)"
    metric = metrics[0]
    kind = metric.get("type", "")
    if kind in ("Resource", "ContainerResource"):
        source = metric.get("resource" if kind == "Resource" else "containerResource") or {}
        if (source.get("target") or {}).get("type") == "Utilization":
            return f"{source.get('name', '')} resource utilization (percentage of request)"
        return f"{source.get('name', '')} resource"
    source = metric.get(kind[:1].lower() + kind[1:]) or {}
    name = (source.get("metric") or {}).get("name", "")
    if kind == "Object":
        described = (source.get("describedObject") or {}).get("kind", "").lower()
        return f"{described} metric {name}"
    return f"{kind.lower()} metric {name}"


def _zero(metric: Obj) -> Obj:
    """The metric's current value, read as zero (the spec's shape, ``target`` -> ``current``)."""
    kind = metric.get("type", "")
    key = kind[:1].lower() + kind[1:]
    source: dict[str, Any] = dict(metric.get(key) or {})
    target = source.pop("target", {}) or {}
    current: Obj = {
        "Utilization": {"averageUtilization": 0, "averageValue": "0"},
        "AverageValue": {"averageValue": "0"},
        "Value": {"value": "0"},
    }.get(target.get("type", ""), {"value": "0"})
    return {"type": kind, key: {**source, "current": current}}
