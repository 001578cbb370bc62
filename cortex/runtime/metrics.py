"""Prometheus metrics of one replica, in a registry the caller owns (no global registry).

Names are a contract (DESIGN.md section 3): the HPA and dashboards read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _InFlight(Collector):
    """Reads the in-flight count at scrape time, so requests pay nothing for the gauge."""

    def __init__(self, api_name: str, read: Callable[[], int]) -> None:
        self._api_name = api_name
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "cortex_in_flight_requests",
            "Requests being processed by this replica (admitted, not yet answered).",
            labels=["api_name"],
        )
        family.add_metric([self._api_name], float(self._read()))
        yield family


class Metrics:
    """The metric objects of one API, with label children bound once for the hot path."""

    def __init__(
        self, api_name: str, registry: CollectorRegistry, in_flight: Callable[[], int]
    ) -> None:
        self.registry = registry
        registry.register(_InFlight(api_name, in_flight))
        requests = Counter(
            "cortex_requests_total",
            "Prediction requests answered, by status class.",
            ["api_name", "status_code"],
            registry=registry,
        )
        self._by_class = {c: requests.labels(api_name, f"{c}XX") for c in (2, 3, 4, 5)}
        self._duration = Histogram(
            "cortex_request_duration_seconds",
            "Time from request arrival to the last response byte.",
            ["api_name"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ).labels(api_name)
        self.batch_size = Histogram(
            "cortex_batch_size",
            "Requests per predict call with server-side batching.",
            ["api_name"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        ).labels(api_name)
        self.queue_wait = Histogram(
            "cortex_queue_wait_seconds",
            "Time a request waited for a thread or a batch before predict ran.",
            ["api_name"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ).labels(api_name)
        self.load_seconds = Gauge(
            "cortex_predictor_load_seconds",
            "Seconds the predictor's __init__ took in this process.",
            ["api_name"],
            registry=registry,
        ).labels(api_name)

    def observe(self, status: int, seconds: float) -> None:
        self._by_class[min(max(status // 100, 2), 5)].inc()
        self._duration.observe(seconds)
