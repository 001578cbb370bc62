"""Renders the PodDisruptionBudget (``policy/v1``) of an API that keeps several replicas. No I/O.

Only for ``autoscaling.min_replicas`` > 1: an API allowed to run on one replica has no
availability to protect, and a budget over a single pod would block every node drain. The
budget lets a drain evict one replica at a time (``maxUnavailable: 1``, whatever the current
scale, so it never blocks a drain the way ``minAvailable`` equal to the replicas would), and
replicas that are not ready may always be evicted (``unhealthyPodEvictionPolicy:
AlwaysAllow``), so a crash-looping API never holds a node. The budget is no part of the pod
template: creating, changing or deleting it replaces no pod. When ``min_replicas`` drops to 1,
``render`` stops returning it and the operator deletes it (an API's objects of a kind it no
longer renders are pruned).
"""

from __future__ import annotations

from typing import Any

from cortex.k8s import context, labels
from cortex.spec import RealtimeAPI

__all__ = ["render_pdb"]


def render_pdb(
    api: RealtimeAPI, owner: context.Owner, settings: context.OperatorSettings
) -> dict[str, Any] | None:
    """The PodDisruptionBudget ``api-<name>``, or None when ``min_replicas`` is 1."""
    del settings  # no setting changes the budget
    if api.autoscaling.min_replicas <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": labels.metadata(api, owner),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": labels.selector(api)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
