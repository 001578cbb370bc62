"""Asks a running API how it is: ``/readyz`` and ``/metrics`` over HTTP, read into numbers.

``parse_metrics`` is pure (Prometheus text in, counts out); the rest makes short HTTP calls
that never raise: an API that does not answer simply reads as not ready, with no metrics.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cortex.cli import environment
from cortex.contracts import Metric, MetricLabel

__all__ = [
    "RequestMetrics",
    "combined",
    "description",
    "metrics",
    "parse_metrics",
    "quantile",
    "ready",
    "with_figures",
]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_TIMEOUT = httpx.Timeout(2.0, connect=1.0)
_DURATION_SUM = f"{Metric.REQUEST_DURATION}_sum"
_DURATION_COUNT = f"{Metric.REQUEST_DURATION}_count"
_WAIT_BUCKET = f"{Metric.QUEUE_WAIT}_bucket"


@dataclass(frozen=True)
class RequestMetrics:
    """Requests answered by status class (``"2XX"``...), their mean duration, and how long they
    waited for a thread (``queue_wait``: the histogram's cumulative counts by upper bound)."""

    by_class: dict[str, int] = field(default_factory=dict)
    duration_sum: float = 0.0
    duration_count: int = 0
    queue_wait: dict[float, int] = field(default_factory=dict)

    @property
    def avg_seconds(self) -> float | None:
        return self.duration_sum / self.duration_count if self.duration_count else None


def _value(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def parse_metrics(text: str, api_name: str) -> RequestMetrics:
    """The request counters of ``api_name`` in a Prometheus text exposition."""
    by_class: dict[str, int] = {}
    waits: dict[float, int] = {}
    total = count = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, raw_labels, raw_value = match.groups()
        labels = dict(_LABEL.findall(raw_labels or ""))
        if labels.get(MetricLabel.API_NAME, api_name) != api_name:
            continue
        value = _value(raw_value)
        if name == Metric.REQUESTS_TOTAL and MetricLabel.STATUS_CODE in labels:
            key = labels[MetricLabel.STATUS_CODE]
            by_class[key] = by_class.get(key, 0) + int(value)
        elif name == _DURATION_SUM:
            total += value
        elif name == _DURATION_COUNT:
            count += value
        elif name == _WAIT_BUCKET and "le" in labels:
            bound = float(labels["le"])
            waits[bound] = waits.get(bound, 0) + int(value)
    return RequestMetrics(by_class, total, int(count), waits)


def quantile(buckets: dict[float, int], q: float) -> float | None:
    """The upper bound of the histogram bucket holding quantile ``q`` (``inf`` past the last
    finite bound), or None with no observations."""
    bounds = sorted(buckets)
    if not bounds or not buckets[bounds[-1]]:
        return None
    rank = q * buckets[bounds[-1]]
    return next(bound for bound in bounds if buckets[bound] >= rank)


def combined(parts: Iterable[RequestMetrics]) -> RequestMetrics:
    """The figures of several replicas added up."""
    by_class: dict[str, int] = {}
    waits: dict[float, int] = {}
    total, count = 0.0, 0
    for part in parts:
        for key, value in part.by_class.items():
            by_class[key] = by_class.get(key, 0) + value
        for bound, number in part.queue_wait.items():
            waits[bound] = waits.get(bound, 0) + number
        total, count = total + part.duration_sum, count + part.duration_count
    return RequestMetrics(by_class, total, count, waits)


def with_figures(row: environment.APIStatus, counts: RequestMetrics) -> environment.APIStatus:
    """``row`` with the request figures of ``counts`` (the columns of ``cortex get``)."""
    return dataclasses.replace(
        row,
        requests_2xx=counts.by_class.get("2XX", 0),
        requests_4xx=counts.by_class.get("4XX", 0),
        requests_5xx=counts.by_class.get("5XX", 0),
        avg_request_seconds=counts.avg_seconds,
        queue_wait_p50_seconds=quantile(counts.queue_wait, 0.5),
        queue_wait_p99_seconds=quantile(counts.queue_wait, 0.99),
    )


def _client() -> httpx.Client:
    # trust_env=False: a proxy configured for the internet must not intercept localhost.
    return httpx.Client(timeout=_TIMEOUT, trust_env=False)


def ready(base_url: str) -> bool:
    """Whether ``GET /readyz`` answers 200."""
    try:
        with _client() as client:
            return client.get(f"{base_url}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def metrics(base_url: str, api_name: str) -> RequestMetrics | None:
    """The API's request metrics, or None when ``/metrics`` does not answer."""
    try:
        with _client() as client:
            response = client.get(f"{base_url}/metrics")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return parse_metrics(response.text, api_name)


def description(base_url: str) -> dict[str, Any]:
    """The API's description (``GET /predict``: its models among others), or {} when the API
    does not answer."""
    try:
        with _client() as client:
            response = client.get(f"{base_url}/predict")
        body = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
