"""The operator's own Prometheus metrics, and the HTTP endpoint that serves them (``--metrics``).

Counters are counted by the work queue and the handlers into :class:`OperatorMetrics`: passes,
server-side applies and deletes by kind, failed passes by reason (the status condition's
reason, e.g. ``Forbidden``, ``InvalidSpec``, ``NameTaken``; ``Temporary`` for what is retried
with backoff). Gauges are read when scraped, from a :class:`Snapshot` of the operator's state,
so they are never stale: the APIs known, the work queue, and each API's readiness (its
``Ready`` condition, with the status word as a label). One registry per operator, no global.
"""

from __future__ import annotations

import enum
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["OperatorMetric", "OperatorMetrics", "Snapshot", "parse_endpoint", "serving"]


class OperatorMetric(enum.StrEnum):
    """The operator's metric names (counters are exposed with ``_total``)."""

    PASSES = "cortex_operator_passes"
    APPLIES = "cortex_operator_applies"
    DELETES = "cortex_operator_deletes"
    ERRORS = "cortex_operator_errors"
    APIS = "cortex_operator_apis"
    QUEUE = "cortex_operator_queue_depth"
    API_READY = "cortex_operator_api_ready"


@dataclass(frozen=True)
class Snapshot:
    """What the gauges show: ``statuses`` maps (namespace, name) to the API's last status."""

    apis: int = 0
    queued: int = 0
    statuses: Mapping[tuple[str, str], Mapping[str, Any] | None] = field(default_factory=dict)


class OperatorMetrics(Collector):
    """The operator's counters, and gauges from ``snapshot()`` at every scrape."""

    def __init__(self, snapshot: Callable[[], Snapshot] = Snapshot) -> None:
        self.snapshot = snapshot
        self.passes = 0
        self.applies: Counter[str] = Counter()
        self.deletes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        passes = CounterMetricFamily(OperatorMetric.PASSES, "Reconcile passes run.")
        passes.add_metric([], self.passes)
        yield passes
        yield _by(
            OperatorMetric.APPLIES, "Children applied (server-side apply).", "kind", self.applies
        )
        yield _by(
            OperatorMetric.DELETES,
            "Children deleted (kinds no longer rendered).",
            "kind",
            self.deletes,
        )
        yield _by(OperatorMetric.ERRORS, "Failed passes, by reason.", "reason", self.errors)
        now = self.snapshot()
        yield GaugeMetricFamily(OperatorMetric.APIS, "RealtimeAPIs known.", value=now.apis)
        yield GaugeMetricFamily(
            OperatorMetric.QUEUE, "APIs waiting for a pass or in one.", value=now.queued
        )
        ready = GaugeMetricFamily(
            OperatorMetric.API_READY,
            "1 when the API's Ready condition is True (its status is live), else 0.",
            labels=["namespace", "api_name", "status"],
        )
        for (namespace, name), status in sorted(now.statuses.items()):
            word, is_ready = _readiness(status)
            ready.add_metric([namespace, name, word], 1.0 if is_ready else 0.0)
        yield ready


def _by(name: str, doc: str, label: str, counts: Counter[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


def _readiness(status: Mapping[str, Any] | None) -> tuple[str, bool]:
    """(status word, Ready) of a status; an API without one yet is not ready."""
    if not status:
        return "", False
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return str(status.get("status") or ""), ready


def parse_endpoint(url: str) -> tuple[str, int, str]:
    """(host, port, path) of an ``http://host:port/path`` URL; ValueError naming what is wrong."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(f"--metrics {url!r} must look like http://0.0.0.0:8081/metrics")
    return parts.hostname, parts.port, parts.path or "/metrics"


@asynccontextmanager
async def serving(url: str | None, registry: CollectorRegistry) -> AsyncIterator[None]:
    """Serve ``registry`` in the Prometheus text format at ``url`` (nothing if None) meanwhile."""
    if url is None:
        yield
        return
    host, port, path = parse_endpoint(url)

    async def scrape(_: aiohttp.web.Request) -> aiohttp.web.Response:
        body = generate_latest(registry)
        return aiohttp.web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.get(path, scrape)])
    runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await aiohttp.web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()
