"""The kinds of objects rendered for an API, and where the API server serves them. Pure.

:data:`CHILD_KINDS` lists every kind :func:`cortex.k8s.render` may produce, whatever the
settings; :func:`rendered_kinds` the ones it may produce with given settings (the
PodDisruptionBudget only for APIs with ``min_replicas`` > 1). The operator watches those kinds,
and removes an API's objects of every kind ``render`` did not return for it (what a change of
settings or of the spec left behind), so adding a kind is adding it here and to ``render``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cortex.k8s import context

__all__ = ["CHILD_KINDS", "POD", "ChildKind", "child_kind", "rendered_kinds"]


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
HPA = ChildKind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers")
PDB = ChildKind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets")
POD = ChildKind("Pod", "", "v1", "pods")  # not rendered: the Deployment's, watched for the status

CHILD_KINDS: tuple[ChildKind, ...] = (DEPLOYMENT, SERVICE, INGRESS, HPA, PDB)
_BY_KIND = {k.kind: k for k in (*CHILD_KINDS, POD)}


def child_kind(kind: str) -> ChildKind:
    """The :class:`ChildKind` of a kind's name (``KeyError`` for one we never render)."""
    return _BY_KIND[kind]


def rendered_kinds(settings: context.OperatorSettings) -> tuple[ChildKind, ...]:
    """The kinds ``render`` may produce with these settings, in the order it renders them."""
    del settings  # every setting renders all of them today
    return CHILD_KINDS
