"""What rendering needs besides the spec: the operator's settings and the owning resource. Pure.

:class:`OperatorSettings` are read once by the operator from ``CORTEX_OPERATOR_*`` environment
variables (:meth:`OperatorSettings.from_env`, which takes the mapping, so nothing here reads
``os.environ``):

==================================  ==========================================================
variable                            meaning (default)
==================================  ==========================================================
CORTEX_OPERATOR_NAMESPACE           the one namespace to watch; empty or unset: all namespaces
CORTEX_OPERATOR_DEFAULT_IMAGE       runtime image for APIs without ``predictor.image``
                                    (``cortex-serving/runtime:0.1.0``)
CORTEX_OPERATOR_ROUTING             how requests reach the APIs: ``gateway`` (a Gateway API
                                    ``HTTPRoute`` per API), ``ingress`` (an ``Ingress`` per
                                    API) or ``none`` (the Service only) (``none``: the one
                                    mode that needs nothing installed; the chart sets
                                    ``gateway``); see docs/routing.md
CORTEX_OPERATOR_GATEWAY             the Gateway every HTTPRoute attaches to, as
                                    ``<namespace>/<name>``; required for ``gateway`` (none)
CORTEX_OPERATOR_INGRESS_CLASS       ``ingressClassName`` of every Ingress; required for
                                    ``ingress`` (none)
CORTEX_OPERATOR_AUTOSCALER          what scales each API (``hpa``): ``keda``, a KEDA
                                    ScaledObject with a Prometheus trigger on in-flight
                                    requests over ``autoscaling.window``; ``hpa``, an HPA on the
                                    in-flight Pods metric of the prometheus-adapter rule;
                                    ``cpu``, an HPA on CPU utilisation (docs/autoscaling.md)
CORTEX_OPERATOR_PROMETHEUS_URL      the Prometheus KEDA queries, ``keda`` only
                                    (``http://prometheus-operated.monitoring.svc:9090``)
CORTEX_OPERATOR_HPA_TOLERANCE       ``true`` only on Kubernetes >= 1.35: per-HPA tolerances
                                    from the spec (``false``: the cluster-wide 10 %)
CORTEX_OPERATOR_GPU_NODE_SELECTOR   node labels GPU pods must run on: ``k=v,k2=v2`` or a JSON
                                    object (none)
CORTEX_OPERATOR_GPU_TOLERATIONS     extra tolerations of GPU pods, a JSON list of Kubernetes
                                    tolerations (none; ``nvidia.com/gpu`` is always tolerated)
CORTEX_OPERATOR_GPU_RUNTIME_CLASS   ``runtimeClassName`` of GPU pods, e.g. ``nvidia`` where the
                                    NVIDIA container runtime is not the node's default (none)
CORTEX_OPERATOR_GPU_SHM_SIZE        size of the memory-backed ``/dev/shm`` of GPU pods (PyTorch
                                    data loaders, NCCL); it counts against the pod's memory
                                    limit; empty: none, the runtime's 64 MiB (``1Gi``)
CORTEX_OPERATOR_SLEEP_ACTION        ``true`` only on Kubernetes >= 1.30: the pods' ``preStop``
                                    is the kubelet's native ``sleep`` (no ``sleep`` binary in
                                    the image needed); ``false``: ``exec sleep`` (``false``)
CORTEX_OPERATOR_ACTIVATOR           the activator's Service, as ``<namespace>/<name>``: the
                                    route of an API with ``min_replicas: 0`` points at it
                                    (docs/scale-to-zero.md); required for such APIs (none)
CORTEX_OPERATOR_PEERING             the kopf peering object replicas share, so that one is
                                    active and the others wait (a ``KopfPeering`` in the
                                    watched namespace, else a ``ClusterKopfPeering``); empty or
                                    unset: standalone, one replica only
CORTEX_OPERATOR_PEERING_LIFETIME    seconds a peer that stopped sending keep-alives still
                                    counts, i.e. how long a crashed active replica keeps the
                                    others waiting (``60``)
==================================  ==========================================================

Booleans read ``true/false``, ``1/0``, ``yes/no`` or ``on/off``. A bad value raises
:class:`cortex.errors.CortexError` naming the variable, the value and what is allowed; so does
``CORTEX_OPERATOR_CUSTOM_METRICS``, replaced by ``CORTEX_OPERATOR_AUTOSCALER`` (not an alias:
an operator started with the old manifests says what to write instead of guessing).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cortex import contracts, errors
from cortex.spec import units

__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_PROMETHEUS_URL",
    "ENV_PREFIX",
    "ENV_VARS",
    "ROUTING_MODES",
    "Autoscaler",
    "OperatorSettings",
    "Owner",
]

DEFAULT_IMAGE = "cortex-serving/runtime:0.1.0"
# The Service the Prometheus Operator makes for every Prometheus (kube-prometheus-stack's
# usual namespace).
DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
ENV_PREFIX = "CORTEX_OPERATOR_"
ENV_VARS = {
    f"{ENV_PREFIX}NAMESPACE": "namespace",
    f"{ENV_PREFIX}DEFAULT_IMAGE": "default_image",
    f"{ENV_PREFIX}ROUTING": "routing",
    f"{ENV_PREFIX}GATEWAY": "gateway",
    f"{ENV_PREFIX}INGRESS_CLASS": "ingress_class",
    f"{ENV_PREFIX}AUTOSCALER": "autoscaler",
    f"{ENV_PREFIX}PROMETHEUS_URL": "prometheus_url",
    f"{ENV_PREFIX}HPA_TOLERANCE": "hpa_tolerance",
    f"{ENV_PREFIX}GPU_NODE_SELECTOR": "gpu_node_selector",
    f"{ENV_PREFIX}GPU_TOLERATIONS": "gpu_tolerations",
    f"{ENV_PREFIX}GPU_RUNTIME_CLASS": "gpu_runtime_class",
    f"{ENV_PREFIX}GPU_SHM_SIZE": "gpu_shm_size",
    f"{ENV_PREFIX}SLEEP_ACTION": "sleep_action",
    f"{ENV_PREFIX}ACTIVATOR": "activator",
    f"{ENV_PREFIX}PEERING": "peering",
    f"{ENV_PREFIX}PEERING_LIFETIME": "peering_lifetime",
}
"""Each environment variable :meth:`OperatorSettings.from_env` reads, and the field it sets."""
_RETIRED = {
    f"{ENV_PREFIX}CUSTOM_METRICS": (
        f"it is replaced by {ENV_PREFIX}AUTOSCALER: set that to hpa (what true meant), cpu "
        "(what false meant) or keda, and remove this variable"
    ),
}
ROUTING_MODES = ("gateway", "ingress", "none")

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class Autoscaler(enum.StrEnum):
    """What scales an API's replicas (docs/autoscaling.md)."""

    KEDA = "keda"  # a KEDA ScaledObject, Prometheus trigger on in-flight requests
    HPA = "hpa"  # an HPA on the prometheus-adapter's averaged in-flight Pods metric
    CPU = "cpu"  # an HPA on CPU utilisation


@dataclass(frozen=True)
class OperatorSettings:
    """The operator's settings; the defaults suit a cluster with the adapter and no routing.

    ``routing`` ``gateway`` needs ``gateway`` (namespace, name), ``ingress`` needs
    ``ingress_class``: :class:`cortex.errors.CortexError` otherwise, naming the variable.
    """

    namespace: str | None = None
    default_image: str = DEFAULT_IMAGE
    routing: str = "none"
    gateway: tuple[str, str] | None = None
    ingress_class: str | None = None
    autoscaler: Autoscaler = Autoscaler.HPA
    prometheus_url: str = DEFAULT_PROMETHEUS_URL
    hpa_tolerance: bool = False
    gpu_node_selector: dict[str, str] = field(default_factory=dict)
    gpu_tolerations: tuple[dict[str, Any], ...] = ()
    gpu_runtime_class: str | None = None
    gpu_shm_size: str | None = "1Gi"
    sleep_action: bool = False
    activator: tuple[str, str] | None = None
    peering: str | None = None
    peering_lifetime: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorSettings:
        """Settings from ``CORTEX_OPERATOR_*`` variables; unset ones keep their defaults."""
        for name, why in _RETIRED.items():
            if name in env:
                raise errors.CortexError(f"{name} is no longer read: {why}")
        values: dict[str, Any] = {}
        for name, attribute in ENV_VARS.items():
            if name in env:
                values[attribute] = _PARSERS[attribute](name, env[name].strip())
        return cls(**values)

    def __post_init__(self) -> None:
        routing = f"{ENV_PREFIX}ROUTING {self.routing!r}"
        if self.routing not in ROUTING_MODES:
            raise errors.CortexError(f"{routing} is not valid: use {', '.join(ROUTING_MODES)}")
        if self.routing == "gateway" and self.gateway is None:
            raise errors.CortexError(
                f"{ENV_PREFIX}GATEWAY is not set: {routing} needs the Gateway the routes attach "
                "to, as <namespace>/<name>, e.g. gateway-system/cortex"
            )
        if self.routing == "ingress" and self.ingress_class is None:
            raise errors.CortexError(
                f"{ENV_PREFIX}INGRESS_CLASS is not set: {routing} needs the class of the "
                "Ingresses, e.g. traefik (kubectl get ingressclass lists them)"
            )


@dataclass(frozen=True)
class Owner:
    """The ``RealtimeAPI`` resource that owns the rendered children (garbage collection)."""

    name: str
    namespace: str
    uid: str
    api_version: str = contracts.API_VERSION
    kind: str = contracts.KIND


def _bad(name: str, value: str, allowed: str) -> errors.CortexError:
    shown = value if len(value) <= 60 else value[:57] + "..."
    return errors.CortexError(f"{name} {shown!r} is not valid: {allowed}")


def _optional_text(name: str, value: str) -> str | None:
    return value or None


def _image(name: str, value: str) -> str:
    if not value or any(char.isspace() for char in value):
        raise _bad(name, value, "set an image reference such as cortex-serving/runtime:0.1.0")
    return value


def _boolean(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(name, value, "use true or false")


def _autoscaler(name: str, value: str) -> Autoscaler:
    try:
        return Autoscaler(value.lower())
    except ValueError:
        raise _bad(name, value, f"use one of {', '.join(a.value for a in Autoscaler)}") from None


def _url(name: str, value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or " " in value:
        raise _bad(name, value, f"use an http(s) URL such as {DEFAULT_PROMETHEUS_URL}")
    return value.rstrip("/")


def _json(name: str, value: str, allowed: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise _bad(name, value, allowed) from None


def _node_selector(name: str, value: str) -> dict[str, str]:
    allowed = 'use k=v,k2=v2 or a JSON object of strings, e.g. {"gpu": "true"}'
    if not value:
        return {}
    if value.startswith("{"):
        data = _json(name, value, allowed)
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise _bad(name, value, allowed)
        return dict(data)
    selector: dict[str, str] = {}
    for pair in value.split(","):
        key, sep, label = (part.strip() for part in pair.partition("="))
        if not key or not sep:
            raise _bad(name, value, allowed)
        selector[key] = label
    return selector


def _tolerations(name: str, value: str) -> tuple[dict[str, Any], ...]:
    allowed = (
        'use a JSON list of tolerations, e.g. [{"key": "gpu", "operator": "Exists", '
        '"effect": "NoSchedule"}]'
    )
    if not value:
        return ()
    data = _json(name, value, allowed)
    if not isinstance(data, list) or not all(
        isinstance(item, dict) and item and set(item) <= set(_TOLERATION_KEYS) for item in data
    ):
        raise _bad(name, value, f"{allowed} (keys: {', '.join(_TOLERATION_KEYS)})")
    return tuple(data)


def _object_name(name: str, value: str) -> str | None:
    if not value:
        return None
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise _bad(
            name, value, "use a Kubernetes object name such as cortex (lowercase a-z, 0-9, -)"
        )
    return value


def _routing(name: str, value: str) -> str:
    if value not in ROUTING_MODES:
        raise _bad(name, value, f"use {', '.join(ROUTING_MODES)}")
    return value


def _gateway(name: str, value: str) -> tuple[str, str] | None:
    if not value:
        return None
    namespace, _, gateway = value.partition("/")
    if not _DNS_LABEL.fullmatch(namespace) or not _DNS_SUBDOMAIN.fullmatch(gateway):
        raise _bad(name, value, "use <namespace>/<name> of a Gateway, e.g. gateway-system/cortex")
    return namespace, gateway


def _service(name: str, value: str) -> tuple[str, str] | None:
    if not value:
        return None
    namespace, _, service = value.partition("/")
    if not _DNS_LABEL.fullmatch(namespace) or not _DNS_LABEL.fullmatch(service):
        raise _bad(name, value, "use <namespace>/<name> of a Service, e.g. cortex/cortex-activator")
    return namespace, service


def _memory(name: str, value: str) -> str | None:
    if not value:
        return None
    try:
        if units.mem_bytes(value) >= 2**20:
            return value
    except (ValueError, ArithmeticError):
        pass
    raise _bad(name, value, "use a memory quantity of at least 1Mi, e.g. 1Gi or 512Mi")


def _seconds(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise _bad(name, value, "use a whole number of seconds, at least 1, e.g. 60")
    return int(value)


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "namespace": _optional_text,
    "default_image": _image,
    "routing": _routing,
    "gateway": _gateway,
    "ingress_class": _optional_text,
    "autoscaler": _autoscaler,
    "prometheus_url": _url,
    "hpa_tolerance": _boolean,
    "gpu_node_selector": _node_selector,
    "gpu_tolerations": _tolerations,
    "gpu_runtime_class": _object_name,
    "gpu_shm_size": _memory,
    "sleep_action": _boolean,
    "activator": _service,
    "peering": _object_name,
    "peering_lifetime": _seconds,
}
