"""The activator's Prometheus metrics, per API (``api_namespace``, ``api_name``).

- ``cortex_activator_held_requests``: requests held now (waiting for the API to wake, or for a
  free slot on its replicas). Cortex's activator only ever set its gauge to 0, which hid held
  requests from the autoscaler; this one is the real count, read from the gates at each scrape.
- ``cortex_activator_in_flight_requests``: held + proxied now; the operator scales an API to
  zero only when this is 0 on every activator.
- ``cortex_activator_requests_total{status_code}``: answered requests, by class (2XX ... 5XX).
- ``cortex_cold_start_seconds``: each wake, from the first request held at zero until a
  replica was ready (knative/serving#13459 asked for exactly this).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cortex.activator.gate import Gate
from cortex.contracts import Metric as Name
from cortex.contracts import MetricLabel

__all__ = ["ActivatorMetrics"]

LABELS = (MetricLabel.API_NAMESPACE.value, MetricLabel.API_NAME.value)
COLD_START_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
Gates = Callable[[], Mapping[tuple[str, str], Gate]]


class _Gauges(Collector):
    def __init__(self, gates: Gates) -> None:
        self.gates = gates

    def collect(self) -> Iterator[Metric]:
        held = GaugeMetricFamily(Name.HELD, "Requests held by the activator.", labels=LABELS)
        busy = GaugeMetricFamily(
            Name.ACTIVATOR_IN_FLIGHT, "Requests held or proxied by the activator.", labels=LABELS
        )
        for (namespace, name), gate in sorted(self.gates().items()):
            held.add_metric([namespace, name], gate.held)
            busy.add_metric([namespace, name], gate.held + gate.proxied)
        yield held
        yield busy


class ActivatorMetrics:
    """The activator's registry; tests give each activator its own."""

    def __init__(self, gates: Gates, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.registry.register(_Gauges(gates))
        self.requests = Counter(
            Name.ACTIVATOR_REQUESTS_TOTAL.removesuffix("_total"),
            "Requests answered by the activator.",
            [*LABELS, MetricLabel.STATUS_CODE.value],
            registry=self.registry,
        )
        self.cold_start = Histogram(
            Name.COLD_START,
            "Seconds from the first request held at zero until a replica was ready.",
            LABELS,
            buckets=COLD_START_BUCKETS,
            registry=self.registry,
        )

    def answered(self, key: tuple[str, str], status: int) -> None:
        self.requests.labels(*key, f"{status // 100}XX").inc()
