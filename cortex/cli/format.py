"""Turns results into the text the CLI prints: tables, ages, latencies, log lines. Pure, no I/O.

The ``cortex get`` table follows the original Cortex (``cli/cmd/get.go@v0.33.0``): lower-case
headers, columns padded and separated by three spaces, latency as ``%.6g ms`` (or seconds from
1000 ms up), ``-`` where there is nothing to show.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Sequence
from typing import Any

from cortex import samples
from cortex.cli import environment
from cortex.contracts import APIState

__all__ = [
    "GET_HEADERS",
    "api_details",
    "curl_example",
    "deploy_line",
    "format_age",
    "format_latency",
    "log_lines",
    "model_lines",
    "status_table",
    "table",
]

GET_HEADERS = (
    "env",
    "api",
    "status",
    "up-to-date",
    "requested",
    "last update",
    "avg request",
    "2XX",
    "4XX",
    "5XX",
)
_SEPARATOR = "   "
QUEUE_WAIT_HINT_SECONDS = 0.5  # a p99 wait for a thread from which `cortex get NAME` says so
_PASTED_SAMPLE = 300  # characters; a longer sample is named by its path (curl -d @file)
_WORKING = (APIState.LIVE, APIState.UPDATING, APIState.SCALED_TO_ZERO)  # no "error:" label


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, three spaces apart, no trailing blanks."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        _SEPARATOR.join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in lines
    )


def format_age(seconds: float) -> str:
    """A time span as its two largest units: ``45s``, ``3m12s``, ``1h4m``, ``2d3h``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    first, second = parts[0], parts[1] if len(parts) > 1 else (0, "")
    return f"{first[0]}{first[1]}" + (f"{second[0]}{second[1]}" if second[0] else "")


def format_latency(seconds: float | None) -> str:
    """Mean request time as the original printed it: ``12.3457 ms``, ``1.5 s``; ``-`` if none."""
    if seconds is None:
        return "-"
    millis = seconds * 1000
    if millis >= 1000:
        return f"{seconds:.6g} s"
    return f"{millis:.6g} ms"


def _row(status: environment.APIStatus, now: float) -> list[str]:
    return [
        status.env,
        status.name,
        status.status,
        str(status.up_to_date),
        str(status.requested),
        format_age(now - status.last_update),
        format_latency(status.avg_request_seconds),
        str(status.requests_2xx),
        str(status.requests_4xx),
        str(status.requests_5xx),
    ]


def status_table(statuses: Sequence[environment.APIStatus], now: float) -> str:
    """The ``cortex get`` table; ``now`` is the current unix time (for ``last update``)."""
    return table(GET_HEADERS, [_row(status, now) for status in statuses])


def api_details(status: environment.APIStatus, now: float) -> str:
    """``cortex get NAME``: the row, the endpoint, a curl example, and what went wrong if any."""
    lines = [status_table([status], now), "", f"endpoint: {status.endpoint}"]
    failing = status.status not in _WORKING
    if not failing and status.endpoint.startswith("http"):
        lines += ["", "example curl:", *curl_example(status.endpoint, status.sample)]
    lines += _queue_hint(status)
    if status.message:
        label = "error" if failing else "last update failed"
        lines += ["", f"{label}: {status.message}"]
    for title, block in status.sections:
        lines += ["", f"{title}:", *(f"  {line}" for line in block)]
    if status.log_tail:
        lines += ["", "last log lines:", *(f"  {line}" for line in status.log_tail)]
    return "\n".join(lines)


MODEL_HEADERS = ("model", "versions", "latest", "loaded")


def model_lines(described: dict[str, Any]) -> tuple[str, ...]:
    """The ``models`` block of ``cortex get NAME``: each model of a multi-model API (its
    versions, latest, the versions in memory) and the cache against its budgets; nothing for
    an API that serves no ``predictor.models``."""
    models = described.get("models")
    if not isinstance(models, list):
        return ()

    def versions(values: Any) -> str:
        return ", ".join(str(v) for v in values) if values else "-"

    rows = [
        [
            str(m.get("name")),
            versions(m.get("versions")),
            str(m.get("latest")),
            versions(m.get("loaded")),
        ]
        for m in models
        if isinstance(m, dict)
    ]
    lines = table(MODEL_HEADERS, rows).splitlines()
    cache = described.get("model_cache") or {}
    memory, disk = cache.get("memory") or {}, cache.get("disk") or {}
    count_limit = cache.get("cache_size")
    bytes_limit = cache.get("max_bytes")
    in_memory = f"{memory.get('models', 0)}" + (f" of {count_limit}" if count_limit else "")
    held = _bytes(memory.get("bytes", 0)) + (f" of {_bytes(bytes_limit)}" if bytes_limit else "")
    lines.append(
        f"in memory: {in_memory} models, {held}; on disk: {disk.get('models', 0)} downloaded"
        + (f" (of {cache['disk_cache_size']})" if cache.get("disk_cache_size") else "")
    )
    return tuple(lines)


def _bytes(count: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} B"


def _queue_hint(status: environment.APIStatus) -> list[str]:
    """A note when requests wait long for a thread: one slow request holds back fast ones."""
    p50, p99 = status.queue_wait_p50_seconds, status.queue_wait_p99_seconds
    if p50 is None or p99 is None or p99 < QUEUE_WAIT_HINT_SECONDS:
        return []
    return [
        "",
        f"requests queue for threads: waited p50 {_bound(p50)}, p99 {_bound(p99)} before "
        "predict (since the API started)",
        "  each process runs predictor.threads_per_process requests at a time and the rest wait;",
        "  raise threads_per_process or processes_per_replica (or lower "
        "server_side_batching.batch_interval)",
    ]


def _bound(seconds: float) -> str:
    return "over the largest bucket" if math.isinf(seconds) else f"<= {format_latency(seconds)}"


def curl_example(endpoint: str, sample: samples.Sample | None) -> list[str]:
    """A curl command that works: the project's sample.json as its body (pasted in when it is
    short, else named by its path), else a placeholder body and how to make it real."""
    head = f'  curl {endpoint} -X POST -H "Content-Type: application/json"'
    if sample is None:
        body = json.dumps({"key": "value"})
        note = f"  (a placeholder body: put one that works in the project's {samples.FILE})"
        return [f"{head} -d {shlex.quote(body)}", note]
    if len(sample.text) <= _PASTED_SAMPLE:
        return [f"{head} -d {shlex.quote(sample.text)}"]
    return [f"{head} -d {shlex.quote('@' + str(sample.path))}"]


def deploy_line(deployment: environment.Deployment) -> str:
    """What ``cortex deploy`` says it does with one API."""
    if deployment.action == "unchanged":
        return f"{deployment.name} is up to date"
    if deployment.action == "in-progress":
        return f"{deployment.name} is already updating"
    verb = "creating" if deployment.action == "create" else APIState.UPDATING.value
    return f"{verb} {deployment.name} ({deployment.kind})"


def log_lines(line: str) -> list[str]:
    """One runtime log line made readable: ``time level message [request id]`` + traceback.

    A line that is not a JSON object (a stray print, a crash message) is shown as it is.
    """
    line = line.rstrip("\n")
    try:
        record: Any = json.loads(line)
    except ValueError:
        return [line]
    if not isinstance(record, dict) or "message" not in record:
        return [line]
    when = str(record.get("time", "")).replace("T", " ").rstrip("Z")
    level = str(record.get("level", "")).upper()
    text = f"{when} {level:<7} {record['message']}".strip()
    if record.get("request_id"):
        text += f"  [request {record['request_id']}]"
    traceback = str(record.get("traceback") or "")
    return [text, *(f"    {part}" for part in traceback.rstrip("\n").splitlines())]
