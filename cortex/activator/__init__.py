"""The activator: the front door of the APIs that may scale to zero (``min_replicas: 0``).

The route of such an API points at the activator's Service (the chart runs two replicas or
more, with a PodDisruptionBudget); the activator maps each request to its API
(:mod:`~cortex.activator.routes`), proxies it at once to a ready replica with a free slot, or
holds it (:mod:`~cortex.activator.gate`) while the API wakes (:mod:`~cortex.activator.waker`),
up to ``max_queue_length`` requests for ``scale_from_zero_timeout``. Readiness comes from the
EndpointSlices (:mod:`~cortex.activator.doors`), the cluster through a small aiohttp client
(:mod:`~cortex.activator.kube`), time through an injectable clock
(:mod:`~cortex.activator.clock`). The operator scales an idle API to zero; the activator only
ever scales from zero. docs/scale-to-zero.md says how it works and what it costs.

Modules, each importing only from those after it: ``__main__`` -> ``app`` -> ``proxy`` ->
``doors`` -> ``metrics | waker | routes | kube`` -> ``gate`` -> ``clock``.
"""
