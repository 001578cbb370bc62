"""The kinds of objects rendered for an API, and where the API server serves them. Pure.

:data:`CHILD_KINDS` lists every kind :func:`cortex.k8s.render` may produce, whatever the
settings; :func:`rendered_kinds` the ones it may produce with given settings (the
PodDisruptionBudget only for APIs with ``min_replicas`` > 1). The operator watches those kinds,
and removes an API's objects of every kind ``render`` did not return for it (what a change of
settings or of the spec left behind), so adding a kind is adding it here and to ``render``.

:data:`AUTOSCALER_KINDS` are the kinds of which an API has one at most: two autoscalers would
fight over its ``/scale``, and KEDA's admission webhook refuses a ScaledObject whose target an
HPA already scales; so the operator deletes the old one before it applies the new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from cortex.k8s import context

__all__ = [
    "AUTOSCALER_KINDS",
    "CHILD_KINDS",
    "HPA",
    "POD",
    "ROUTE_KINDS",
    "SCALED_OBJECT",
    "ChildKind",
    "autoscaler_kind",
    "child_kind",
    "rendered_kinds",
    "route_kind",
]


@dataclass(frozen=True)
class ChildKind:
    kind: str
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


DEPLOYMENT = ChildKind("Deployment", "apps", "v1", "deployments")
SERVICE = ChildKind("Service", "", "v1", "services")
INGRESS = ChildKind("Ingress", "networking.k8s.io", "v1", "ingresses")
HTTPROUTE = ChildKind("HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes")
HPA = ChildKind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers")
SCALED_OBJECT = ChildKind("ScaledObject", "keda.sh", "v1alpha1", "scaledobjects")
PDB = ChildKind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets")
POD = ChildKind("Pod", "", "v1", "pods")  # not rendered: the Deployment's, watched for the status

CHILD_KINDS: tuple[ChildKind, ...] = (
    DEPLOYMENT,
    SERVICE,
    INGRESS,
    HTTPROUTE,
    HPA,
    SCALED_OBJECT,
    PDB,
)
AUTOSCALER_KINDS: tuple[ChildKind, ...] = (HPA, SCALED_OBJECT)
ROUTE_KINDS: tuple[ChildKind, ...] = (HTTPROUTE, INGRESS)
_ROUTES = {"gateway": HTTPROUTE, "ingress": INGRESS}
_BY_KIND = {k.kind: k for k in (*CHILD_KINDS, POD)}


def child_kind(kind: str) -> ChildKind:
    """The :class:`ChildKind` of a kind's name (``KeyError`` for one we never render)."""
    return _BY_KIND[kind]


def route_kind(settings: context.OperatorSettings) -> ChildKind | None:
    """The kind of route these settings render (None: routing ``none``)."""
    return _ROUTES.get(settings.routing)


def autoscaler_kind(settings: context.OperatorSettings) -> ChildKind:
    """The kind of autoscaler these settings render."""
    return SCALED_OBJECT if settings.autoscaler == context.Autoscaler.KEDA else HPA


def rendered_kinds(settings: context.OperatorSettings) -> tuple[ChildKind, ...]:
    """The kinds ``render`` may produce with these settings, in the order it renders them (the
    PodDisruptionBudget only for some APIs)."""
    route = route_kind(settings)
    routes = () if route is None else (route,)
    return (DEPLOYMENT, SERVICE, *routes, autoscaler_kind(settings), PDB)
