"""Prometheus metrics of one replica, summed over its worker processes.

Names are a contract (DESIGN.md section 3): the HPA and dashboards read them. Each worker
counts into its own slot of the replica's shared memory (``ReplicaMemory``): a few float additions
per request, no lock, no files. ``/metrics`` in any worker renders the sum of all slots, so
the answer is the same whichever process the scrape lands on. No global registry.
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from cortex import contracts
from cortex.runtime import sharedmem

Name = contracts.Metric
Label = contracts.MetricLabel

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
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)
STATUS_CLASSES = (2, 3, 4, 5)


class Refusal(enum.StrEnum):
    """Why a connection was closed or its request refused by an HTTP limit (the ``reason``)."""

    HEADER_BYTES = "header_bytes"  # 431
    HEADER_COUNT = "header_count"  # 431
    URL_BYTES = "url_bytes"  # 414
    HEADER_TIMEOUT = "header_timeout"  # 408, or closed when nothing came
    IDLE = "idle"  # a keep-alive connection idle past its timeout: closed
    CONNECTIONS = "connections"  # over the per-worker cap: 503
    MALFORMED = "malformed"  # not HTTP/1.1: 400


class _Histogram:
    """A histogram laid out in a slot: [sum, count, bucket_0 .. bucket_n, +Inf] (not cumulative)."""

    def __init__(self, offset: int, buckets: tuple[float, ...]) -> None:
        self.offset = offset
        self.buckets = buckets
        self.width = len(buckets) + 3

    def observe(self, values: Any, base: int, value: float) -> None:
        at = base + self.offset
        values[at] += value
        values[at + 1] += 1
        values[at + 2 + bisect_left(self.buckets, value)] += 1

    def family(self, name: Name, doc: str, api: str, totals: list[float]) -> HistogramMetricFamily:
        at = self.offset
        family = HistogramMetricFamily(name, doc, labels=[Label.API_NAME])
        cumulative, running = [], 0.0
        for i, bound in enumerate((*self.buckets, float("inf"))):
            running += totals[at + 2 + i]
            cumulative.append((_le(bound), running))
        family.add_metric([api], cumulative, sum_value=totals[at])
        return family


def _counter(name: Name, doc: str, api: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[Label.API_NAME])
    family.add_metric([api], value)
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


# Slot layout: [used marker, 2XX, 3XX, 4XX, 5XX, rejected, 504s, 408s, load seconds,
# histograms..., refusals by reason]
_REQUESTS = 1
_REJECTED = _REQUESTS + len(STATUS_CLASSES)
_TIMEOUTS = _REJECTED + 1
_BODY_TIMEOUTS = _TIMEOUTS + 1
_LOAD = _BODY_TIMEOUTS + 1
_DURATION = _Histogram(_LOAD + 1, LATENCY_BUCKETS)
_BATCH = _Histogram(_DURATION.offset + _DURATION.width, BATCH_BUCKETS)
_WAIT = _Histogram(_BATCH.offset + _BATCH.width, LATENCY_BUCKETS)
_REFUSED = _WAIT.offset + _WAIT.width  # one cell per Refusal, in its order
_REFUSALS = {reason: _REFUSED + i for i, reason in enumerate(Refusal)}
WIDTH = _REFUSED + len(_REFUSALS)


def answered(totals: list[float]) -> float:
    """Requests answered, of the replica-wide ``totals`` (a scrape of /metrics is none)."""
    return sum(totals[_REQUESTS : _REQUESTS + len(STATUS_CLASSES)])


class Metrics(Collector):
    """Counts one worker's requests into its slot; renders the replica-wide sums."""

    def __init__(self, api_name: str, shared: sharedmem.ReplicaMemory, slot: int) -> None:
        self.api_name = api_name
        self.shared = shared
        self._values = shared.values
        self._base = shared.claim(slot)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(self, status: int, seconds: float) -> None:
        self._values[self._base + _REQUESTS + min(max(status // 100, 2), 5) - 2] += 1
        _DURATION.observe(self._values, self._base, seconds)

    def reject(self) -> None:
        """One 503 of the concurrency cap (also counted by :meth:`observe` as a 5XX)."""
        self._values[self._base + _REJECTED] += 1

    def refuse(self, reason: Refusal) -> None:
        """One connection closed or request refused by an HTTP limit."""
        self._values[self._base + _REFUSALS[reason]] += 1

    def timed_out(self) -> None:
        """One 504 of networking.timeout (also counted by :meth:`observe`)."""
        self._values[self._base + _TIMEOUTS] += 1

    def body_timed_out(self) -> None:
        """One 408: the request body did not arrive within the body timeout."""
        self._values[self._base + _BODY_TIMEOUTS] += 1

    def observe_batch(self, size: int) -> None:
        _BATCH.observe(self._values, self._base, float(size))

    def observe_wait(self, seconds: float) -> None:
        _WAIT.observe(self._values, self._base, seconds)

    def set_load_seconds(self, seconds: float) -> None:
        self._values[self._base + _LOAD] = seconds

    def collect(self) -> Iterator[Metric]:
        api, totals = self.api_name, self.shared.totals()
        in_flight = GaugeMetricFamily(
            Name.IN_FLIGHT,
            "Requests admitted and not yet answered, across the replica's processes.",
            labels=[Label.API_NAME],
        )
        in_flight.add_metric([api], float(self.shared.in_flight()))
        yield in_flight
        requests = CounterMetricFamily(
            Name.REQUESTS,
            "Prediction requests answered, by status class.",
            labels=[Label.API_NAME, Label.STATUS_CODE],
        )
        for i, code in enumerate(STATUS_CLASSES):
            requests.add_metric([api, f"{code}XX"], totals[_REQUESTS + i])
        yield requests
        rejected = CounterMetricFamily(
            Name.REJECTED,
            "Requests answered 503 at once because the replica had max_replica_concurrency "
            "requests in flight (also counted as 5XX requests).",
            labels=[Label.API_NAME],
        )
        rejected.add_metric([api], totals[_REJECTED])
        yield rejected
        refused = CounterMetricFamily(
            Name.REFUSED_CONNECTIONS,
            "Connections closed or requests refused by an HTTP limit, by reason "
            "(these requests are not in the requests counter).",
            labels=[Label.API_NAME, Label.REASON],
        )
        for reason, cell in _REFUSALS.items():
            refused.add_metric([api, reason.value], totals[cell])
        yield refused
        yield _counter(
            Name.TIMEOUTS,
            "Requests answered 504: no response within networking.timeout.",
            api,
            totals[_TIMEOUTS],
        )
        yield _counter(
            Name.BODY_TIMEOUTS,
            "Requests answered 408: the body did not arrive within the body timeout.",
            api,
            totals[_BODY_TIMEOUTS],
        )
        abandoned = GaugeMetricFamily(
            Name.ABANDONED_THREADS,
            "Predict threads still running a call whose request timed out or left (a thread "
            "cannot be stopped); when every thread is, the replica reports not ready.",
            labels=[Label.API_NAME],
        )
        abandoned.add_metric([api], float(self.shared.abandoned_threads()))
        yield abandoned
        yield _DURATION.family(
            Name.REQUEST_DURATION,
            "Time from request arrival to the last response byte.",
            api,
            totals,
        )
        yield _BATCH.family(
            Name.BATCH_SIZE,
            "Requests per predict call with server-side batching.",
            api,
            totals,
        )
        yield _WAIT.family(
            Name.QUEUE_WAIT,
            "Time an admitted request waited for a thread or a batch before predict ran.",
            api,
            totals,
        )
        load = GaugeMetricFamily(
            Name.PREDICTOR_LOAD,
            "Seconds the slowest process of the replica spent in the predictor's __init__.",
            labels=[Label.API_NAME],
        )
        values, base = self._values, self.shared.used_slots()
        load.add_metric([api], max((values[b + _LOAD] for b in base), default=0.0))
        yield load
