"""What two processes or two packages of cortex must agree on, defined once. Pure; imports
nothing of ours.

- the ``RealtimeAPI`` custom resource's coordinates, and the labels its children carry;
- the names of the runtime's metrics (the autoscaler, dashboards and ``cortex get`` read them);
- the states: :class:`RuntimeState` is what one replica's runtime says it is doing (its status
  file, ``/readyz``), :class:`APIState` is what users see of an API (``cortex get``, the
  resource's ``status.status``);
- the runtime's status file (:class:`RuntimeStatus`), written by the runtime, read by the CLI;
- the runtime's command line (:class:`RuntimeArgs`, :func:`runtime_command`), built the same
  way by the local environment, ``cortex serve`` and the Kubernetes renderer, and parsed by the
  runtime from the same :class:`Flag` names;
- the project archive's limits (:data:`PROJECT_MAX_BYTES`, :data:`PROJECT_MAX_ENTRIES`), which
  the CLI checks when it packs and the pod's unpack step (:func:`unpack_command`) enforces.

A test greps ``cortex/`` and fails when one of these words is spelled anywhere else.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANNOTATION_SPEC_HASH",
    "API_VERSION",
    "COLD_START_HEADER",
    "CRD_NAME",
    "DEFAULT_PORT",
    "GROUP",
    "INSTALL_MODULE",
    "KIND",
    "LABEL_API_KIND",
    "LABEL_API_NAME",
    "PLURAL",
    "PROJECT_MAX_BYTES",
    "PROJECT_MAX_ENTRIES",
    "RUNTIME_MODULE",
    "SHORT_NAMES",
    "SINGULAR",
    "SPEC_ENV_CHUNK",
    "UNPACK_MODULE",
    "VERSION",
    "APIState",
    "Flag",
    "Metric",
    "MetricLabel",
    "RuntimeArgs",
    "RuntimeState",
    "RuntimeStatus",
    "install_command",
    "joined_spec_env",
    "runtime_command",
    "spec_env_parts",
    "unpack_command",
]

# -- the custom resource ------------------------------------------------------------------------

GROUP = "cortex.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RealtimeAPI"
PLURAL = "realtimeapis"
SINGULAR = "realtimeapi"
SHORT_NAMES = ("rapi",)
CRD_NAME = f"{PLURAL}.{GROUP}"

COLD_START_HEADER = "X-Cortex-Cold-Start"  # seconds a response was held while its API woke
LABEL_API_NAME = f"{GROUP}/api-name"
LABEL_API_KIND = f"{GROUP}/api-kind"
ANNOTATION_SPEC_HASH = f"{GROUP}/spec-hash"

# -- metrics ------------------------------------------------------------------------------------


class Metric(enum.StrEnum):
    """Prometheus metric names (DESIGN.md section 3). Counters are exposed with ``_total``."""

    IN_FLIGHT = "cortex_in_flight_requests"
    REQUESTS = "cortex_requests"
    REQUESTS_TOTAL = "cortex_requests_total"
    # 503s of the concurrency cap (max_replica_concurrency), before any predictor ran.
    REJECTED = "cortex_rejected_requests"
    REQUEST_DURATION = "cortex_request_duration_seconds"
    BATCH_SIZE = "cortex_batch_size"
    QUEUE_WAIT = "cortex_queue_wait_seconds"
    PREDICTOR_LOAD = "cortex_predictor_load_seconds"
    # Connections closed or requests refused by an HTTP limit (headers, URL, slow or idle
    # connections, the per-worker connection cap), by reason.
    REFUSED_CONNECTIONS = "cortex_refused_connections"
    # 504s of networking.timeout, and 408s of a request body that did not arrive in time.
    TIMEOUTS = "cortex_request_timeouts"
    BODY_TIMEOUTS = "cortex_body_timeouts"
    # Predict threads still running a call whose request timed out or left.
    ABANDONED_THREADS = "cortex_abandoned_threads"
    # The in-flight gauge averaged over a window, per pod: what the autoscaler reads.
    IN_FLIGHT_AVG = "cortex_in_flight_requests_avg"
    # The model cache of a multi-model API (predictor.models; docs/multi-model.md).
    MODEL_CACHE_REQUESTS = "cortex_model_cache_requests"
    MODEL_LOADS = "cortex_model_loads"
    MODEL_LOAD_SECONDS = "cortex_model_load_seconds"
    MODEL_EVICTIONS = "cortex_model_evictions"
    MODEL_OVER_BUDGET = "cortex_model_over_budget"
    MODELS_LOADED = "cortex_models_loaded"
    MODEL_BYTES = "cortex_model_bytes"
    # The activator's (docs/scale-to-zero.md), per API: requests held while it wakes or is
    # full, held + proxied, answered (by status class), and the seconds each wake took.
    HELD = "cortex_activator_held_requests"
    ACTIVATOR_IN_FLIGHT = "cortex_activator_in_flight_requests"
    ACTIVATOR_REQUESTS_TOTAL = "cortex_activator_requests_total"
    COLD_START = "cortex_cold_start_seconds"


class MetricLabel(enum.StrEnum):
    API_NAME = "api_name"
    API_NAMESPACE = "api_namespace"  # the activator's series: it serves many namespaces
    STATUS_CODE = "status_code"
    REASON = "reason"
    MODEL = "model"
    RESULT = "result"
    OUTCOME = "outcome"
    TIER = "tier"


# -- states -------------------------------------------------------------------------------------


class RuntimeState(enum.StrEnum):
    """What one replica's runtime is doing, as its status file and ``/readyz`` say."""

    LOADING = "loading"  # the predictor's __init__ runs; not ready yet
    READY = "ready"  # serving
    RELOADING = "reloading"  # a new version loads next to the one serving
    DRAINING = "draining"  # stopping: in-flight requests finish, no new ones
    FAILED = "failed"  # the predictor could not be loaded; the process exits
    ASLEEP = "asleep"  # min_replicas 0, idle: no workers; the master holds the port and wakes


class APIState(enum.StrEnum):
    """What a user sees of an API: ``cortex get`` and the resource's ``status.status``."""

    LIVE = "live"
    UPDATING = "updating"
    SCALED_TO_ZERO = "scaled to zero"
    ERROR = "error"
    ERROR_IMAGE_PULL = "error (image pull)"
    ERROR_OOM = "error (out of memory)"
    ERROR_INIT = "error (init)"
    ERROR_CONFIG = "error (config)"
    ERROR_REJECTED = "error (rejected)"
    ERROR_ROLLOUT_STUCK = "error (rollout stuck)"
    COMPUTE_UNAVAILABLE = "compute unavailable"


# -- the runtime's status file ------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeStatus:
    """The runtime's status file (``--status-file``): what it serves, where and in which state.

    ``port`` is the port really listened on (``--port 0`` picks a free one). ``cause`` says in
    one line why the predictor could not be loaded (or reloaded: the old version then keeps
    serving), so readers need not search the log for it.
    """

    pid: int
    port: int
    state: RuntimeState
    spec_hash: str
    cause: str | None
    updated: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "port": self.port,
                "state": self.state.value,
                "spec_hash": self.spec_hash,
                "cause": self.cause,
                "updated": self.updated,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> RuntimeStatus | None:
        """The record in ``text``; None when it is not one (half written, another version)."""
        try:
            data: Any = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                port=int(data["port"]),
                state=RuntimeState(data["state"]),
                spec_hash=str(data["spec_hash"]),
                cause=None if data.get("cause") is None else str(data["cause"]),
                updated=float(data["updated"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


# -- the runtime's command line -----------------------------------------------------------------

RUNTIME_MODULE = "cortex.runtime"
DEFAULT_PORT = 8888


class Flag(enum.StrEnum):
    """The runtime's command-line flags."""

    SPEC = "--spec"
    SPEC_ENV = "--spec-env"
    API = "--api"
    PROJECT_DIR = "--project-dir"
    HOST = "--host"
    PORT = "--port"
    FD = "--fd"
    MAX_BODY_BYTES = "--max-body-bytes"
    MAX_HEADER_BYTES = "--max-header-bytes"
    MAX_HEADERS = "--max-headers"
    MAX_URL_BYTES = "--max-url-bytes"
    HEADER_TIMEOUT = "--header-timeout"
    KEEP_ALIVE_TIMEOUT = "--keep-alive-timeout"
    MAX_CONNECTIONS = "--max-connections"
    BODY_TIMEOUT = "--body-timeout"
    ACCESS_LOG = "--access-log"
    DRAIN_GRACE = "--drain-grace"
    GRACEFUL_TIMEOUT = "--graceful-timeout"
    STATUS_FILE = "--status-file"
    ANY_PATH = "--any-path"


@dataclass(frozen=True)
class RuntimeArgs:
    """A runtime invocation; fields left ``None`` (or ``False``) keep the runtime's default."""

    spec: str | None = None
    spec_env: str | None = None
    api: str | None = None
    project_dir: str | None = None
    host: str | None = None
    port: int | None = None
    fd: int | None = None  # listen on this inherited, bound socket instead of --host/--port
    max_body_bytes: int | None = None
    max_header_bytes: int | None = None
    max_headers: int | None = None
    max_url_bytes: int | None = None
    header_timeout: float | None = None
    keep_alive_timeout: float | None = None
    max_connections: int | None = None  # per worker process
    body_timeout: float | None = None
    access_log: bool = False
    drain_grace: float | None = None
    graceful_timeout: int | None = None
    status_file: str | None = None
    any_path: bool = False  # behind a route: a POST to any path but our own is a prediction

    def argv(self) -> list[str]:
        """The flags, in :class:`Flag` order."""
        values: list[tuple[Flag, object]] = [
            (Flag.SPEC, self.spec),
            (Flag.SPEC_ENV, self.spec_env),
            (Flag.API, self.api),
            (Flag.PROJECT_DIR, self.project_dir),
            (Flag.HOST, self.host),
            (Flag.PORT, self.port),
            (Flag.FD, self.fd),
            (Flag.MAX_BODY_BYTES, self.max_body_bytes),
            (Flag.MAX_HEADER_BYTES, self.max_header_bytes),
            (Flag.MAX_HEADERS, self.max_headers),
            (Flag.MAX_URL_BYTES, self.max_url_bytes),
            (Flag.HEADER_TIMEOUT, self.header_timeout),
            (Flag.KEEP_ALIVE_TIMEOUT, self.keep_alive_timeout),
            (Flag.MAX_CONNECTIONS, self.max_connections),
            (Flag.BODY_TIMEOUT, self.body_timeout),
            (Flag.DRAIN_GRACE, self.drain_grace),
            (Flag.GRACEFUL_TIMEOUT, self.graceful_timeout),
            (Flag.STATUS_FILE, self.status_file),
        ]
        argv = [str(x) for flag, value in values if value is not None for x in (flag, value)]
        switches = [(Flag.ACCESS_LOG, self.access_log), (Flag.ANY_PATH, self.any_path)]
        return argv + [str(flag) for flag, on in switches if on]


def runtime_command(args: RuntimeArgs, python: str = "python") -> list[str]:
    """``python -m cortex.runtime`` with ``args``: the local process or the container command."""
    return [python, "-m", RUNTIME_MODULE, *args.argv()]


# -- the spec in the environment ----------------------------------------------------------------

SPEC_ENV_CHUNK = 60_000
"""Characters of the spec per environment variable: Linux refuses to exec a process with one
variable over 128 KiB (MAX_ARG_STRLEN), and Kubernetes' ``$`` -> ``$$`` escaping may double
them. A longer spec continues in ``<VAR>_1``, ``<VAR>_2``, ..."""


def spec_env_parts(name: str, text: str) -> list[tuple[str, str]]:
    """``text`` as environment variables ``name``, ``name_1``, ... of at most a chunk each."""
    chunks = [text[i : i + SPEC_ENV_CHUNK] for i in range(0, len(text), SPEC_ENV_CHUNK)] or [""]
    return [(name if i == 0 else f"{name}_{i}", chunk) for i, chunk in enumerate(chunks)]


def joined_spec_env(env: Mapping[str, str], name: str) -> str | None:
    """The text :func:`spec_env_parts` spread over ``name``, ``name_1``, ... (None: unset)."""
    if name not in env:
        return None
    parts, i = [env[name]], 1
    while f"{name}_{i}" in env:
        parts.append(env[f"{name}_{i}"])
        i += 1
    return "".join(parts)


# -- the project archive ------------------------------------------------------------------------

PROJECT_MAX_BYTES = 1024**3
"""The most a project archive may unpack to: a ConfigMap holds under 1 MiB, but gzip shrinks
zeros a thousandfold, so without a limit one archive could fill a node's disk."""
PROJECT_MAX_ENTRIES = 10_000
"""The most files and folders (those implied by a file's path included) a project may hold."""
UNPACK_MODULE = "cortex.unpack"


def unpack_command(archive: str, folder: str) -> list[str]:
    """``python -m cortex.unpack ARCHIVE FOLDER``: the pod's init container."""
    return ["python", "-m", UNPACK_MODULE, archive, folder]


# -- predictor.dependencies in a pod ------------------------------------------------------------

INSTALL_MODULE = "cortex.install"


def install_command(project: str, pip: str, shell: str, target: str) -> list[str]:
    """``python -m cortex.install PROJECT PIP SHELL TARGET``: the pod's dependencies step."""
    return ["python", "-m", INSTALL_MODULE, project, pip, shell, target]
