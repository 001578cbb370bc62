"""Puts an idle API that may scale to zero to sleep: 0 replicas after ``scale_to_zero_after``.

Each pass over an awake API with ``min_replicas: 0`` (at least every :data:`POLL_SECONDS`)
reads what is going on from the processes that see its requests, with no Prometheus in
between: every activator (the ready endpoints of the activator's Service,
``CORTEX_OPERATOR_ACTIVATOR``) and every replica (those of ``api-<name>``), each through its
``/metrics``. :class:`Activity` sums their in-flight requests (held ones included) and their
request counters. The API is idle from the last pass that saw a request in flight or a
counter move (a request that came and went between two passes moves a counter); a scrape that
fails makes the activity unknown, which is never idle: a scale to zero must not drop requests
it could not see. Once idle for ``scale_to_zero_after``, the operator writes ``replicas: 0`` to
the RealtimeAPI's ``/scale`` with the resourceVersion it read: a wake (or the HPA) writing in
between makes it fail with 409, and a request that arrives just after is held by the
activator, which wakes the API again (one cold start, nothing lost). With KEDA the
ScaledObject is deleted first: KEDA sets a target below ``minReplicaCount`` back to it.

The clock is the :class:`~cortex.operator.state.State`'s, so tests move it by hand. The same
scrape tells of each wake's cold start (the activators' ``cortex_cold_start_seconds``), which
:func:`condition` shows with the time of the last wake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from cortex import contracts
from cortex.operator.status import Condition

__all__ = ["POLL_SECONDS", "SCALED_TO_ZERO", "Activity", "Idle", "condition", "parse", "scrape"]

POLL_SECONDS = 10.0
SCRAPE_TIMEOUT = 5.0
SCALED_TO_ZERO = "ScaledToZero"
_Name = contracts.Metric
_COUNTERS = (_Name.REQUESTS_TOTAL, _Name.ACTIVATOR_REQUESTS_TOTAL)
_GAUGES = (_Name.IN_FLIGHT, _Name.ACTIVATOR_IN_FLIGHT)


@dataclasses.dataclass(frozen=True)
class Activity:
    """What the activators and replicas say of one API; ``cold_starts``: (count, sum)."""

    in_flight: float = 0.0
    requests: float = 0.0
    cold_starts: tuple[float, float] = (0.0, 0.0)

    def __add__(self, other: Activity) -> Activity:
        count, total = (a + b for a, b in zip(self.cold_starts, other.cold_starts, strict=True))
        return Activity(
            self.in_flight + other.in_flight, self.requests + other.requests, (count, total)
        )


def _ours(labels: Mapping[str, str], namespace: str, name: str) -> bool:
    if labels.get(contracts.MetricLabel.API_NAME) != name:
        return False
    return labels.get(contracts.MetricLabel.API_NAMESPACE, namespace) == namespace


def parse(text: str, namespace: str, name: str) -> Activity:
    """The activity of API ``namespace/name`` in one process's metrics (runtime or activator)."""
    in_flight = requests = count = total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not _ours(sample.labels, namespace, name):
                continue
            if sample.name in _GAUGES:
                in_flight += sample.value
            elif sample.name in _COUNTERS:
                requests += sample.value
            elif sample.name == f"{_Name.COLD_START}_count":
                count += sample.value
            elif sample.name == f"{_Name.COLD_START}_sum":
                total += sample.value
    return Activity(in_flight, requests, (count, total))


async def scrape(urls: Iterable[str], namespace: str, name: str) -> Activity | None:
    """The summed activity at ``urls`` (``http://host:port``), None if one could not be read."""
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(url: str) -> Activity | None:
            try:
                async with session.get(f"{url}/metrics") as response:
                    if response.status != 200:
                        return None
                    return parse(await response.text(), namespace, name)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None

        found = await asyncio.gather(*(one(url) for url in urls))
    if any(activity is None for activity in found):
        return None
    return sum((a for a in found if a is not None), Activity())


@dataclasses.dataclass
class _Seen:
    requests: float
    since: float


class Idle:
    """Since when each API has been idle, on the operator's clock; and its last cold start."""

    def __init__(self) -> None:
        self._seen: dict[Any, _Seen] = {}
        self._cold: dict[Any, tuple[float, float]] = {}  # the activators' cold starts seen
        self.cold_start: dict[Any, float] = {}  # seconds of each API's last wake
        self.woken: dict[Any, datetime.datetime] = {}  # when the operator saw it wake
        self.checks = 0  # passes that looked (tests wait on it)
        self.replicas: dict[Any, int] = {}  # the replicas each API had at its last pass

    def observe(self, key: Any, activity: Activity | None, now: float) -> float:
        """Seconds the API has been idle as of ``now`` (0 while busy or unknown)."""
        self.checks += 1
        seen = self._seen.get(key)
        if activity is None or activity.in_flight > 0:
            if seen is not None:
                seen.since = now
            return 0.0
        if seen is None:
            seen = self._seen[key] = _Seen(activity.requests, now)
        self.count_cold_starts(key, activity)
        if activity.requests != seen.requests:
            seen.requests, seen.since = activity.requests, now
        return now - seen.since

    def count_cold_starts(self, key: Any, activity: Activity | None) -> None:
        """Note the activators' cold starts; new ones since the last look make the last cold
        start (their average, if several activators each saw one)."""
        if activity is None:
            return
        count, total = activity.cold_starts
        before = self._cold.get(key)
        if before is not None and count > before[0]:
            self.cold_start[key] = (total - before[1]) / (count - before[0])
        self._cold[key] = activity.cold_starts

    def forget(self, key: Any) -> None:
        """Start over: the API slept, or its processes changed (counters start again)."""
        self._seen.pop(key, None)

    def drop(self, key: Any) -> None:
        """Forget everything about a deleted API."""
        for kept in (self._seen, self._cold, self.cold_start, self.woken, self.replicas):
            kept.pop(key, None)


def condition(asleep: bool, woken: datetime.datetime | None, cold_start: float | None) -> Condition:
    """``ScaledToZero``: True while the API sleeps; False once woken, with when and how long its
    cold start took."""
    if asleep:
        return Condition(SCALED_TO_ZERO, "True", "Idle", "no requests: scaled to 0 replicas")
    parts = []
    if woken is not None:
        parts.append(f"woken at {woken.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    if cold_start is not None:
        parts.append(f"last cold start {cold_start:.2f}s")
    return Condition(SCALED_TO_ZERO, "False", "Awake", ", ".join(parts) or "serving")
