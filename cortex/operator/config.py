"""How kopf runs the operator: kopf settings and run arguments from our settings.

Pure, but for the peering priority drawn at random when none is given.

- Persistence under our own domain (annotations ``cortex.dev/*``, a ``cortex.dev/finalizer``),
  should a handler ever need it: today every handler is an event handler (the reconciling is
  level-triggered, see ``handlers``), so kopf writes nothing on the resources.
- Events are posted (Normal and up) as ``cortex-operator``.
- One namespace (``CORTEX_OPERATOR_NAMESPACE``) or the whole cluster. Watching one namespace
  needs no cluster-wide permissions, so kopf's CRD/namespace scanning is off then (the CRD must
  exist when the operator starts).
- Standalone by default: one replica (the Deployment uses ``strategy: Recreate``), no peering
  resources. With ``CORTEX_OPERATOR_PEERING`` the replicas peer through that kopf peering object
  (it must exist, else every replica waits for it): the one with the highest priority is active,
  the others pause until it leaves the peering (at once when it stops, after the peering lifetime
  when it dies). Equal priorities pause every replica, hence a random one per process.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import kopf

from cortex import contracts
from cortex.k8s import OperatorSettings

__all__ = ["DOMAIN", "MAX_PRIORITY", "kopf_settings", "quiet_handler_successes", "run_options"]

DOMAIN = contracts.GROUP
MAX_PRIORITY = 2**31 - 1
"""Priorities are drawn from 1 to this: two replicas draw the same one once in two billion."""


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
    options.peering.lifetime = settings.peering_lifetime
    return options


def run_options(settings: OperatorSettings, *, priority: int | None = None) -> dict[str, Any]:
    """Keyword arguments of ``kopf.run``/``kopf.operator`` besides registry and settings.

    ``priority``: this replica's rank among its peers (highest is active); random if None.
    """
    scope: dict[str, Any] = (
        {"namespaces": [settings.namespace], "clusterwide": False}
        if settings.namespace
        else {"clusterwide": True}
    )
    if settings.peering is None:
        return {**scope, "standalone": True}
    if priority is None:
        priority = random.randint(1, MAX_PRIORITY)
    return {**scope, "standalone": False, "peering_name": settings.peering, "priority": priority}


class _HandlerSuccesses(logging.Filter):
    """Drops kopf's "Handler '...' succeeded." lines: every handler here is an event handler,
    run for every watch event of every API, child and pod (thousands of lines a minute on a
    busy cluster, none of them news). Failures still log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        routine = message.startswith("Handler '") and message.endswith("' succeeded.")
        return not (record.levelno == logging.INFO and routine)


def quiet_handler_successes() -> None:
    """Keep kopf's per-event success lines out of the operator's log."""
    logging.getLogger("kopf.objects").addFilter(_HandlerSuccesses())
