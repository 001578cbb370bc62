"""JSON log lines: one object per line with time, level, message, api and request_id.

Payloads are never logged unless the level is debug, and then at most :data:`PAYLOAD_LOG_LIMIT`
characters of each. A payload is the request's body, query string and headers, and what a
predictor says about them: the message of an exception raised by ``predict`` or ``post_predict``
(``KeyError('<a value sent>')``, ``ValueError(f"bad input {payload}")``) is treated as one. So
above debug a failure logs its type and traceback frames (file, line, code) without the message,
and the access log shows each path without its query string.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
import traceback
from typing import Any

import orjson

PAYLOAD_LOG_LIMIT = 1024
WITHHELD = "(message withheld: it may hold the payload; predictor.log_level debug logs it)"
_ACCESS_PATH = 2  # uvicorn's access log arguments: client, method, path?query, version, status
# What probes ask (kubelet, `cortex get`, a Prometheus scrape): logged at debug only, or every
# `cortex get` would add lines to the log the user reads for requests.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cortex_request_id", default=None
)


class JSONFormatter(logging.Formatter):
    """Formats records as JSON; the request id comes from the context of the request."""

    def __init__(self, api_name: str) -> None:
        super().__init__()
        self._api_name = api_name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "api": self._api_name,
            "logger": record.name,
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            line["request_id"] = rid
        redacted = getattr(record, "traceback", None)
        if redacted:
            line["traceback"] = redacted
        elif record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure(api_name: str, level: str = "info") -> None:
    """Send every logger (ours, uvicorn's, the user's) to stdout as JSON lines."""
    handler = _RootHandler(sys.stdout)
    handler.setFormatter(JSONFormatter(api_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    debug = level.lower() == "debug"
    access.filters[:] = [_short_query] if debug else [_not_a_probe, _without_query]


class _RootHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler: every logger's records, once each, as JSON.

    A library that adds its own handler writing to the console and still propagates to the root
    printed each line twice in ``cortex logs``: once as its text, once as JSON. A record that
    such a handler has just printed is not printed again, and the handler is retired, so the
    library's next lines come once, as JSON.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        printed = False
        while logger is not None and logger is not logging.root:
            printed = _retire_console_handlers(logger, record.levelno) or printed
            logger = logger.parent
        return False if printed else bool(super().handle(record))


def adopt_console_handlers() -> None:
    """Retire the console handlers libraries added to their loggers (see :class:`_RootHandler`)
    before they print anything: called once the predictor's module is imported and once its
    ``__init__`` ran, where libraries set them up."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            _retire_console_handlers(logger, logging.NOTSET)


def _retire_console_handlers(logger: logging.Logger, level: int) -> bool:
    """Remove ``logger``'s console handlers; whether one of them printed a record of ``level``."""
    console = [h for h in logger.handlers if _is_console(h)]
    if not console:
        return False
    logger.handlers[:] = [h for h in logger.handlers if h not in console]
    logger.propagate = True
    return any(level and level >= h.level for h in console)


def _is_console(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    consoles = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    return type(handler) is logging.StreamHandler and any(stream is c for c in consoles)


def _not_a_probe(record: logging.LogRecord) -> bool:
    args = record.args
    full = args[_ACCESS_PATH] if isinstance(args, tuple) and len(args) > _ACCESS_PATH else None
    return not (isinstance(full, str) and full.partition("?")[0] in PROBE_PATHS)


def _rewrite_path(record: logging.LogRecord, keep: int) -> bool:
    args = record.args
    full = args[_ACCESS_PATH] if isinstance(args, tuple) and len(args) > _ACCESS_PATH else None
    if isinstance(args, tuple) and isinstance(full, str):
        path, mark, query = full.partition("?")
        shown = f"{path}{mark}{query[:keep]}" if keep else path + ("?..." if mark else "")
        record.args = (*args[:_ACCESS_PATH], shown, *args[_ACCESS_PATH + 1 :])
    return True


def _without_query(record: logging.LogRecord) -> bool:
    return _rewrite_path(record, 0)


def _short_query(record: logging.LogRecord) -> bool:
    return _rewrite_path(record, PAYLOAD_LOG_LIMIT)


def log_failure(logger: logging.Logger, what: str, exc: BaseException, hint: str = "") -> None:
    """Log at error that ``what`` (``predict``...) raised ``exc``, its message only at debug.

    ``hint`` is the runtime's own word on the request (never the payload): always logged."""
    shown = PAYLOAD_LOG_LIMIT if logger.isEnabledFor(logging.DEBUG) else 0
    summary = _summary(exc, shown) + (f" ({hint})" if hint else "")
    logger.error("%s failed: %s", what, summary, extra={"traceback": _traceback(exc, shown)})


def _summary(exc: BaseException, shown: int) -> str:
    name = type(exc).__qualname__
    if not shown:
        return f"{name} {WITHHELD}"
    text = str(exc)
    return f"{name}: {text[:shown]}" + ("..." if len(text) > shown else "")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, oldest first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or context
    return chain[::-1]


def _traceback(exc: BaseException, shown: int) -> str:
    """Python's traceback text of ``exc`` and its chain, each message as :func:`_summary` says."""
    parts = []
    for item in _chain(exc):
        frames = "".join(traceback.format_tb(item.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{_summary(item, shown)}\n")
    return "\nDuring or because of the above, another exception occurred:\n\n".join(parts)
