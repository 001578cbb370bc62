"""Prometheus metrics of a multi-model API's cache: requests, loads, evictions, what is held.

One process holds the cache (``predictor.models`` requires one process per replica), so the
counts live here, in plain dicts under a lock, and are rendered by this collector in the
process's registry next to the request metrics. With ``label_models: false`` no series carries
a ``model`` label: an API of thousands of models keeps a handful of series.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from cortex import contracts

Name = contracts.Metric
Label = contracts.MetricLabel

LOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
MEMORY, DISK = "memory", "disk"

Usage = Callable[[], dict[str, tuple[int, int]]]
"""Per tier: (models, bytes) held now."""


class ModelMetrics(Collector):
    """The cache's :class:`~cortex.runtime.modelclient.Observer`, rendered for Prometheus."""

    def __init__(self, api_name: str, per_model: bool) -> None:
        self.api_name = api_name
        self.per_model = per_model
        self.usage: Usage = dict
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, ...]] = Counter()
        self._loads: Counter[tuple[str, ...]] = Counter()
        self._evictions: Counter[tuple[str, str]] = Counter()
        self._over_budget = 0
        self._load_sum = 0.0
        self._load_buckets = [0] * (len(LOAD_BUCKETS) + 1)

    def _model(self, key: Any) -> tuple[str, ...]:
        return (str(key[0]),) if self.per_model else ()

    def requested(self, key: Any, result: str) -> None:
        with self._lock:
            self._requests[(*self._model(key), result)] += 1

    def loaded(self, key: Any, seconds: float, ok: bool) -> None:
        with self._lock:
            self._loads[(*self._model(key), "ok" if ok else "error")] += 1
            self._load_sum += seconds
            self._load_buckets[bisect_left(LOAD_BUCKETS, seconds)] += 1

    def evicted(self, key: Any, reason: str) -> None:
        with self._lock:
            self._evictions[(MEMORY, reason)] += 1

    def evicted_disk(self, name: str, version: int) -> None:
        with self._lock:
            self._evictions[(DISK, "count")] += 1

    def over_budget(self) -> None:
        with self._lock:
            self._over_budget += 1

    def collect(self) -> Iterator[Metric]:
        api, model = self.api_name, [Label.MODEL] if self.per_model else []
        with self._lock:
            requests, loads = dict(self._requests), dict(self._loads)
            evictions, over = dict(self._evictions), self._over_budget
            load_sum, buckets = self._load_sum, list(self._load_buckets)
        family = CounterMetricFamily(
            Name.MODEL_CACHE_REQUESTS,
            "Models asked of the cache: hit (in memory), miss (loaded for it), coalesced "
            "(waited for a load another request started).",
            labels=[Label.API_NAME, *model, Label.RESULT],
        )
        for labels, value in sorted(requests.items()):
            family.add_metric([api, *labels], value)
        yield family
        family = CounterMetricFamily(
            Name.MODEL_LOADS,
            "Model loads (download and load_model), by outcome.",
            labels=[Label.API_NAME, *model, Label.OUTCOME],
        )
        for labels, value in sorted(loads.items()):
            family.add_metric([api, *labels], value)
        yield family
        yield _histogram(api, load_sum, buckets)
        family = CounterMetricFamily(
            Name.MODEL_EVICTIONS,
            "Models taken out of a tier: count and bytes (the budgets), removed (gone from "
            "the source), replaced (a newer version is latest).",
            labels=[Label.API_NAME, Label.TIER, Label.REASON],
        )
        for (tier, reason), value in sorted(evictions.items()):
            family.add_metric([api, tier, reason], value)
        yield family
        family = CounterMetricFamily(
            Name.MODEL_OVER_BUDGET,
            "Models admitted over a budget because every model in memory was in use.",
            labels=[Label.API_NAME],
        )
        family.add_metric([api], over)
        yield family
        yield from self._usage(api)

    def _usage(self, api: str) -> Iterator[Metric]:
        usage = self.usage()
        models = GaugeMetricFamily(
            Name.MODELS_LOADED, "Models held, per tier.", labels=[Label.API_NAME, Label.TIER]
        )
        size = GaugeMetricFamily(
            Name.MODEL_BYTES,
            "Bytes of the models held, per tier (in memory: model_size, else the files' size).",
            labels=[Label.API_NAME, Label.TIER],
        )
        for tier in (MEMORY, DISK):
            count, held = usage.get(tier, (0, 0))
            models.add_metric([api, tier], count)
            size.add_metric([api, tier], held)
        yield models
        yield size


def _histogram(api: str, total: float, buckets: list[int]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        Name.MODEL_LOAD_SECONDS,
        "Time a model took to download (when remote) and load.",
        labels=[Label.API_NAME],
    )
    cumulative, running = [], 0
    for bound, count in zip((*LOAD_BUCKETS, float("inf")), buckets, strict=True):
        running += count
        cumulative.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
    family.add_metric([api], cumulative, sum_value=total)
    return family
