"""The seam between the commands and where APIs run: the ``Environment`` protocol and its results.

Commands speak only to an ``Environment``: ``local`` (processes on this machine,
``cortex.cli.local``) or a Kubernetes cluster (``cortex.cli.cluster``). Pure data and protocol
here, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from cortex import errors, samples
from cortex.contracts import APIState
from cortex.spec import RealtimeAPI

__all__ = [
    "APIStatus",
    "Deployment",
    "Environment",
    "LogLine",
    "Reply",
    "Request",
    "Rollout",
    "not_deployed",
]

Action = Literal["create", "update", "unchanged", "in-progress"]


@dataclass(frozen=True)
class Deployment:
    """What ``deploy`` did with one API; ``token`` is the backend's note for ``rollout``."""

    name: str
    kind: str
    action: Action
    endpoint: str
    token: str = ""


@dataclass(frozen=True)
class Rollout:
    """Where a deployment stands: still going (``pending``), ``ready`` or ``failed``."""

    state: Literal["pending", "ready", "failed"]
    detail: str = ""
    log_tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class APIStatus:
    """One row of ``cortex get``, measured from the running API (never guessed)."""

    env: str
    name: str
    kind: str
    status: APIState
    up_to_date: int
    requested: int
    last_update: float
    endpoint: str
    requests_2xx: int = 0
    requests_4xx: int = 0
    requests_5xx: int = 0
    avg_request_seconds: float | None = None
    # Time requests waited for a thread (or a batch) before predict, since the API started:
    # the upper bounds of the histogram buckets holding the median and the 99th percentile.
    queue_wait_p50_seconds: float | None = None
    queue_wait_p99_seconds: float | None = None
    message: str | None = None
    sample: samples.Sample | None = None  # the project's request body that works, if it has one
    log_tail: tuple[str, ...] = field(default=())
    # Extra blocks of ``cortex get NAME``: (title, lines), e.g. replicas, conditions, events.
    sections: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sample"] = None if self.sample is None else self.sample.value
        data["log_tail"] = list(self.log_tail)
        data["sections"] = {title: list(lines) for title, lines in self.sections}
        return data


@dataclass(frozen=True)
class LogLine:
    """One line of an API's log; ``source`` names the pod it came from (empty locally)."""

    source: str
    text: str


@dataclass(frozen=True)
class Request:
    """What ``predict`` sends: the body and its type, query parameters and extra headers (these
    win over the content type and the token the environment would send)."""

    body: bytes
    content_type: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reply:
    """An API's answer to ``predict``. A streamed answer (no declared length) comes as
    ``stream``, its chunks as they arrive, with ``body`` empty: read it to its end or close it.
    """

    status_code: int
    content_type: str
    body: bytes
    stream: Generator[bytes, None, None] | None = None


class Environment(Protocol):
    """Where APIs are deployed: this machine or a cluster."""

    name: str
    waits_by_default: bool  # whether ``cortex deploy`` waits for live without ``--wait``
    poll_seconds: float  # how often a wait asks ``rollout`` again

    def deploy(
        self,
        apis: Sequence[RealtimeAPI],
        config: Path,
        confirm: Callable[[str], bool],
        force: bool = False,
        deps: bool = True,
    ) -> list[Deployment]:
        """Start or update each API of the config file ``config``; returns at once.

        An API whose spec and project files are unchanged is left as it is, unless ``force``.
        ``confirm(question)`` is asked before replacing something the user may not expect;
        ``deps`` False skips ``predictor.dependencies`` (locally only: ``--no-deps``).
        """
        ...

    def rollout(self, deployment: Deployment) -> Rollout:
        """Whether a deployment returned by ``deploy`` is ready yet (cheap; polled)."""
        ...

    def get(self, name: str | None = None) -> list[APIStatus]:
        """The status of one API, or of every API of the environment."""
        ...

    def names(self) -> list[str]:
        """The names of the deployed APIs, sorted."""
        ...

    def logs(self, name: str, follow: bool, pod: str | None = None) -> Iterator[LogLine]:
        """The API's log lines as written; with ``follow`` it waits for more until deleted.

        ``pod`` keeps the lines of one replica (clusters only)."""
        ...

    def predict(self, name: str, request: Request) -> Reply:
        """Post a payload to the API's endpoint."""
        ...

    def delete(self, name: str, wait: bool = True) -> None:
        """Stop the API gracefully (in-flight requests finish) and forget it; ``wait`` until
        its replicas are gone."""
        ...


def not_deployed(name: str, env: str, deployed: Sequence[str]) -> errors.CortexError:
    """The error for an API name the environment does not know."""
    hint = f"deployed: {', '.join(deployed)}" if deployed else "none deployed yet"
    return errors.CortexError(f"api '{name}' is not deployed in environment '{env}' ({hint})")
