"""The kopf operator: ``RealtimeAPI`` resources in, Deployment/Service/route/HPA out.

Run it with ``python -m cortex.operator``. Embed it (tests, benchmarks) with::

    settings = OperatorSettings.from_env(os.environ)
    await kopf.operator(registry=build_registry(settings), settings=kopf_settings(settings),
                        **run_options(settings))

Modules: ``kube`` (the only one talking to the API server), ``status`` (pure summaries) and
``drift`` (pure: does a live object hold what we apply?) <- ``cache`` (what the watches said)
and ``routing`` (pure: the Routed condition, route claims) and ``idle`` (since when an API that
may scale to zero is idle, its metrics scraped) <- ``state`` (per-operator memory, the work
queue) and ``listing`` (what the watches may not have said) <- ``sleeper`` (scales idle APIs to
zero) <- ``handlers`` (kopf glue, one reconcile pass) ; ``config`` (kopf settings).
"""

from __future__ import annotations

from cortex.operator.config import kopf_settings, run_options
from cortex.operator.handlers import build_registry

__all__ = ["build_registry", "kopf_settings", "run_options"]
