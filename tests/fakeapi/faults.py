"""Faults tests inject into the fake API server: errors, throttling, a slow server.

A :class:`Fault` matches resource requests as RBAC names them (verb, ``deployments.apps`` or
``realtimeapis.cortex.dev/status``, name, namespace, user) and acts on the first ``times`` of
them, or on all of them until ``until`` (a ``time.monotonic()`` deadline), or until the test
clears it. It answers with what a kube-apiserver sends:

- 500 ``InternalError``: ``Internal error occurred: <cause>``, the cause also in
  ``details.causes`` (``errors.NewInternalError``; an etcd leader change by default);
- 503 ``ServiceUnavailable`` (``errors.NewServiceUnavailable``), 504 ``Timeout``;
- 409 ``Conflict``: ``Operation cannot be fulfilled on deployments.apps "x": the object has
  been modified; please apply your changes to the latest version and try again``, with the
  name, group and resource in ``details`` (``errors.NewConflict``);
- 429 ``TooManyRequests``: a ``Status`` whose ``details.retryAfterSeconds`` the server also
  sends as a ``Retry-After`` header (``responsewriters.ErrorNegotiated`` does so for any
  Status with it), or, ``plain``, API Priority and Fairness's own answer: ``Retry-After`` and
  the text ``Too many requests, please try again later.``;
- ``delay``: the request waits that long before it is served (a slow server), or answered
  with ``code``. A write is served even if its client has left meanwhile, as a real server
  finishes what it started.

Breaking watches is ``streams.cut``: the connections drop, as when an API server restarts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web

from tests.fakeapi.errors import ApiError
from tests.fakeapi.rbac import Attributes

CODES = (409, 429, 500, 503, 504)
ETCD_HICCUP = "etcdserver: leader changed"
_TOO_MANY = "Too many requests, please try again later."


@dataclass
class Fault:
    """What to do to the requests that match; ``hits`` counts those it acted on."""

    verb: str = "*"
    resource: str = "*"  # as RBAC names it, with the subresource: ``deployments.apps/scale``
    name: str | None = None
    namespace: str | None = None
    user: str | None = None
    code: int | None = None
    retry_after: int | None = None
    plain: bool = False
    delay: float = 0.0
    times: int | None = None
    until: float | None = None
    cause: str = ETCD_HICCUP
    hits: int = 0

    def __post_init__(self) -> None:
        if self.code == 429 and self.retry_after is None:
            self.retry_after = 1  # API Priority and Fairness's constant
        if self.code is None and not self.delay:
            raise ValueError("a fault needs a code to answer or a delay")
        if self.code is not None and self.code not in CODES:
            raise ValueError(f"code {self.code}: the faults answer one of {CODES}")
        if self.plain and self.code != 429:
            raise ValueError("plain is API Priority and Fairness's 429")

    def matches(self, asked: Attributes, user: str, now: float) -> bool:
        if (self.times is not None and self.hits >= self.times) or (
            self.until is not None and now >= self.until
        ):
            return False
        named = asked.resource + (f".{asked.group}" if asked.group else "")
        what = named + (f"/{asked.subresource}" if asked.subresource else "")
        return (
            self.verb in ("*", asked.verb)
            and self.resource in ("*", what)
            and self.name in (None, asked.name)
            and self.namespace in (None, asked.namespace)
            and self.user in (None, user)
        )

    def error(self, asked: Attributes) -> ApiError:
        """The Status of the answer (a ``Fault`` with a ``code``)."""
        details: dict[str, Any] = {}
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if self.code == 409:
            named = asked.resource + (f".{asked.group}" if asked.group else "")
            message = (
                f'Operation cannot be fulfilled on {named} "{asked.name or ""}": the object has '
                "been modified; please apply your changes to the latest version and try again"
            )
            details = {"name": asked.name or "", "group": asked.group, "kind": asked.resource}
            return ApiError(409, "Conflict", message, {k: v for k, v in details.items() if v})
        if self.code == 429:
            return ApiError(429, "TooManyRequests", _TOO_MANY, details)
        if self.code == 503:
            message = "the server is currently unable to handle the request"
            return ApiError(503, "ServiceUnavailable", message, details)
        if self.code == 504:
            message = "Timeout: request did not complete within requested timeout"
            return ApiError(504, "Timeout", f"{message} - context deadline exceeded", details)
        causes = [{"message": self.cause}]
        message = f"Internal error occurred: {self.cause}"
        return ApiError(500, "InternalError", message, {**details, "causes": causes})

    def answer(self, asked: Attributes) -> aiohttp.web.Response:
        error = self.error(asked)
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if self.plain:  # http.Error: text, and Go's nosniff header
            headers["X-Content-Type-Options"] = "nosniff"
            return aiohttp.web.Response(
                status=429, text=_TOO_MANY + "\n", charset="utf-8", headers=headers
            )
        body = json.dumps(error.status())
        return aiohttp.web.Response(
            status=error.code, text=body, content_type="application/json", headers=headers
        )


@dataclass
class Faults:
    """The faults in force, first injected first."""

    active: list[Fault] = field(default_factory=list)

    def take(self, asked: Attributes, user: str) -> Fault | None:
        """The fault that acts on this request (counted as hit), or None."""
        now = time.monotonic()
        for fault in self.active:
            if fault.matches(asked, user, now):
                fault.hits += 1
                return fault
        return None
