"""Defaulting of built-in workloads as the API server decodes them (``pkg/apis/apps/v1`` and
``pkg/apis/core/v1`` ``defaults.go``): Deployments, ReplicaSets, their pod templates and Pods.

Applied to the whole object on every write, so a patch or an apply that drops a defaulted field
gets the default back, and what a client reads differs from what it sent exactly as on a cluster
(strategy, probes, ``imagePullPolicy``, quantities in canonical form...). Pure: modifies and
returns the object it is given; raises ``ValueError`` for a quantity that is not one.
"""

from __future__ import annotations

from typing import Any

from tests.fakeapi import quantity

Obj = dict[str, Any]

_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE_DEFAULTS = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}
_FILE_MODES = ("configMap", "secret", "downwardAPI", "projected")


def deployment(obj: Obj) -> Obj:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = _dict(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    pod_template(_dict(spec, "template"))
    return obj


def replica_set(obj: Obj) -> Obj:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    pod_template(_dict(spec, "template"))
    return obj


def pod(obj: Obj) -> Obj:
    """A Pod also gets requests from its limits and ``enableServiceLinks`` (a template does not)."""
    spec = pod_spec(_dict(obj, "spec"))
    for container in _containers(spec):
        resources = container["resources"]
        if "limits" in resources:
            resources["requests"] = {**resources["limits"], **resources.get("requests", {})}
    spec.setdefault("enableServiceLinks", True)
    return obj


def pod_template(template: Obj) -> Obj:
    pod_spec(_dict(template, "spec"))
    return template


def pod_spec(spec: Obj) -> Obj:
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    for container in _containers(spec):
        _container(container)
    for volume in spec.get("volumes") or []:
        for source in _FILE_MODES:
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 0o644)
    return spec


def _container(container: Obj) -> None:
    if "imagePullPolicy" not in container:
        container["imagePullPolicy"] = (
            "Always" if _tag(container.get("image", "")) in ("latest", None) else "IfNotPresent"
        )
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    resources = _dict(container, "resources")
    for key in ("limits", "requests"):
        if isinstance(resources.get(key), dict):
            resources[key] = {name: quantity.canonical(v) for name, v in resources[key].items()}
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for name in _PROBES:
        if isinstance(container.get(name), dict):
            probe = container[name]
            for key, value in _PROBE_DEFAULTS.items():
                probe.setdefault(key, value)
            _handler(probe)
    for hook in (container.get("lifecycle") or {}).values():
        if isinstance(hook, dict):
            _handler(hook)
    for env in container.get("env") or []:
        field = ((env.get("valueFrom") or {}) if isinstance(env, dict) else {}).get("fieldRef")
        if isinstance(field, dict):
            field.setdefault("apiVersion", "v1")


def _handler(handler: Obj) -> None:
    get = handler.get("httpGet")
    if isinstance(get, dict):
        get.setdefault("path", "/")
        get.setdefault("scheme", "HTTP")


def _tag(image: str) -> str | None:
    """The image's tag; None when it has neither a tag nor a digest (so ``latest``)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else None


def _containers(spec: Obj) -> list[Obj]:
    found = []
    for key in ("initContainers", "containers"):
        found += [c for c in spec.get(key) or [] if isinstance(c, dict)]
    return found


def _dict(obj: Obj, key: str) -> Obj:
    """``obj[key]``, made a dict if absent or null (a wrong type is left for validation)."""
    if obj.get(key) is None:
        obj[key] = {}
    value = obj[key]
    return value if isinstance(value, dict) else {}
