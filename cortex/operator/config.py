"""How kopf runs the operator: kopf settings and run arguments from our settings. Pure.

- Persistence under our own domain: handler progress and the last handled spec are annotations
  ``cortex.dev/*`` (nothing under ``status``, which is ours); the finalizer name is
  ``cortex.dev/finalizer`` although no handler needs one.
- Events are posted (Normal and up) as ``cortex-operator``.
- One namespace (``CORTEX_OPERATOR_NAMESPACE``) or the whole cluster. Watching one namespace
  needs no cluster-wide permissions, so kopf's CRD/namespace scanning is off then (the CRD must
  exist when the operator starts).
- Standalone: one replica (the Deployment uses ``strategy: Recreate``), no peering resources.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from cortex import contracts
from cortex.k8s import OperatorSettings

__all__ = ["DOMAIN", "kopf_settings", "run_options"]

DOMAIN = contracts.GROUP


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    options = kopf.OperatorSettings()
    options.persistence.finalizer = f"{DOMAIN}/finalizer"
    options.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=DOMAIN)
    options.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=DOMAIN, key="last-handled-configuration"
    )
    options.posting.enabled = True
    options.posting.level = logging.INFO
    options.posting.reporting_component = "cortex-operator"
    options.posting.event_name_prefix = "cortex-"
    options.watching.server_timeout = 300
    options.watching.client_timeout = 330
    options.watching.connect_timeout = 30
    options.networking.request_timeout = 60
    options.scanning.disabled = settings.namespace is not None
    return options


def run_options(settings: OperatorSettings) -> dict[str, Any]:
    """Keyword arguments of ``kopf.run``/``kopf.operator`` besides registry and settings."""
    if settings.namespace:
        return {"namespaces": [settings.namespace], "clusterwide": False, "standalone": True}
    return {"clusterwide": True, "standalone": True}
