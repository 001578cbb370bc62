"""The API spec models (Cortex v0.33 RealtimeAPI): fields, defaults and validation rules. Pure.

The models are the single source of truth for ``cortex.yaml`` and for the CRD's schema
(``APISpec.model_json_schema()``). Defaults that depend on other fields are filled after
validation: ``autoscaling.init_replicas`` (= ``min_replicas``, or 1 when that is 0),
``autoscaling.target_replica_concurrency`` (= processes x threads, or x ``max_batch_size`` if
larger, when batching) and, on a ``RealtimeAPI``,
``networking.endpoint`` (= ``/<name>``). Checks against the project folder run only when the
validation context carries a ``base_dir``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cortex import contracts
from cortex.spec import messages, multimodel, units

__all__ = [
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "SUPPORTED_KINDS",
    "APISpec",
    "Auth",
    "Autoscaling",
    "Compute",
    "Dependencies",
    "EnvRef",
    "Networking",
    "Predictor",
    "Project",
    "RealtimeAPI",
    "ServerSideBatching",
    "UpdateStrategy",
]

SUPPORTED_KINDS = (contracts.KIND,)
NAME_MAX_LENGTH = 42  # Kubernetes appends up to 21 characters to pod names
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""The API name rule, a DNS-1035 label: also the CRD's ``metadata.name`` pattern."""
RESERVED_ENDPOINTS = ("/healthz", "/readyz", "/metrics")

_DNS_1035 = re.compile(NAME_PATTERN)
_ENDPOINT = re.compile(r"/[A-Za-z0-9._~/-]*")
_HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# An image reference as container runtimes parse it (distribution/reference): registry host and
# port, path components, then a tag and/or a digest. Separators are never empty, so a long
# non-matching name fails in linear time.
_IMAGE_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_IMAGE_HOST = rf"{_IMAGE_LABEL}(?:\.{_IMAGE_LABEL})*(?::[0-9]+)?/"
_IMAGE_DIGEST = r"@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE = re.compile(
    rf"(?:{_IMAGE_HOST})?{_IMAGE_PART}(?:/{_IMAGE_PART})*(?::\w[\w.-]{{0,127}})?(?:{_IMAGE_DIGEST})?"
)
IMAGE_MAX_LENGTH = 1000
_SHA256 = re.compile(r"[0-9a-f]{64}")
SCALE_TO_ZERO_FIELDS = ("scale_to_zero_after", "max_queue_length", "scale_from_zero_timeout")
"""The fields of ``autoscaling`` that only an API with ``min_replicas: 0`` uses."""
INT32_MAX = 2**31 - 1  # what Kubernetes' integer fields (replicas, counts) hold

if TYPE_CHECKING:
    # mypy takes no name inside Literal[...]; pydantic still sees the literal below.
    Kind = str
else:
    Kind = Literal[contracts.KIND]

# Strict: YAML's `true` must not pass as 1, nor 2.5 as 2.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]
Bool = Annotated[bool, Strict()]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _project_file(value: str, info: ValidationInfo, *, folder: bool) -> None:
    """Checks that a path of the project stays inside it and, given a base_dir, exists there."""
    relative = PurePosixPath(value.replace("\\", "/"))
    base = (info.context or {}).get("base_dir")
    if relative.is_absolute() or ".." in relative.parts:
        where = f" ({base})" if base is not None else ""
        raise messages.rule_error(f"must be a path inside the project folder{where}", value)
    if base is None:
        return
    try:
        target = (Path(base) / relative).resolve()
        inside = target.is_relative_to(Path(base).resolve())
        found = target.is_dir() if folder else target.is_file()
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the file system
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise messages.rule_error(f"is not a usable path ({why})", value) from None
    if not inside:
        raise messages.rule_error(f"must be a path inside the project folder ({base})", value)
    if folder and not found:
        raise messages.rule_error(f"is not a folder (looked for {target})", value)
    if not folder and not found:
        raise messages.rule_error(f"does not exist (looked for {target})", value)


class ServerSideBatching(_Model):
    """Requests gathered into one ``predict`` call of up to ``max_batch_size`` payloads."""

    max_batch_size: Int = Field(ge=2, le=1024)
    batch_interval: units.Duration

    @field_validator("batch_interval")
    @classmethod
    def _interval_positive(cls, value: float) -> float:
        if value <= 0:
            raise messages.rule_error("must be > 0 (e.g. 10ms)", units.format_duration(value))
        return value


def _object_name(value: str, what: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise messages.rule_error(
            f"must be the name of a {what} (lowercase a-z, 0-9, '-' and '.')", value
        )
    return value


def _env_name(key: str) -> None:
    if key.startswith("CORTEX_"):
        raise messages.rule_error(
            f"key {messages.show(key)} is reserved: names starting with CORTEX_ are set by cortex"
        )
    if not _ENV_NAME.fullmatch(key):
        raise messages.rule_error(
            f"key {messages.show(key)} is not a valid variable name "
            "(letters, digits, '_', '-', '.'; not starting with a digit)"
        )


class EnvRef(_Model):
    """An environment variable's value read from one key of a Secret or a ConfigMap of the
    API's namespace when the pod starts (a container's ``valueFrom``), so the value itself is
    never in the spec. Exactly one of ``secret`` and ``config_map``."""

    secret: str | None = None
    config_map: str | None = None
    key: str = Field(max_length=253)
    optional: Bool = False

    @field_validator("secret", "config_map")
    @classmethod
    def _names(cls, value: str | None, info: ValidationInfo) -> str | None:
        what = "Secret" if info.field_name == "secret" else "ConfigMap"
        return None if value is None else _object_name(value, what)

    @field_validator("key")
    @classmethod
    def _data_key(cls, value: str) -> str:
        if not _DATA_KEY.fullmatch(value):
            raise messages.rule_error("must be a data key (letters, digits, '-', '_', '.')", value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.secret is None) == (self.config_map is None):
            raise messages.rule_error(
                "must name exactly one of secret and config_map (and its key)"
            )
        return self


class Dependencies(_Model):
    """What is installed before the runtime starts: a pip requirements file and a bash script,
    both inside the project folder. A default whose file is missing means nothing to install;
    a file the spec names must exist, and ``""`` turns the step off (an image that has the
    packages already). Pydantic validates only the values given, not the defaults, which is
    what tells the two apart."""

    pip: str = "requirements.txt"
    shell: str = "dependencies.sh"

    @field_validator("pip", "shell")
    @classmethod
    def _named_file_exists(cls, value: str, info: ValidationInfo) -> str:
        if value:
            _project_file(value, info, folder=False)
        return value


class Predictor(_Model):
    """The user's predictor class and how each replica runs it."""

    type: Literal["python"]
    path: str
    config: dict[str, Any] = Field(default_factory=dict)
    processes_per_replica: Int = Field(default=1, ge=1, le=100)
    threads_per_process: Int = Field(default=1, ge=1, le=30000)
    server_side_batching: ServerSideBatching | None = None
    env: dict[str, str] = Field(default_factory=dict)
    env_refs: dict[str, EnvRef] = Field(default_factory=dict)
    image: str = ""
    service_account: str | None = None
    python_path: str = ""
    dependencies: Dependencies = Field(default_factory=Dependencies)
    models: multimodel.Models | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("config", "env", "env_refs", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("env", mode="before")
    @classmethod
    def _env_values_as_text(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        return {key: _env_text(key, item) for key, item in value.items()}

    @field_validator("config")
    @classmethod
    def _config_is_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json(value, "")
        return value

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str) -> str:
        if value and (len(value) > IMAGE_MAX_LENGTH or not _IMAGE.fullmatch(value)):
            raise messages.rule_error(
                "is not an image reference such as registry.example.com/team/api:1.2 "
                "(lowercase path, optional :tag and @sha256:digest, no spaces)",
                value,
            )
        return value

    @field_validator("env", "env_refs")
    @classmethod
    def _env_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            _env_name(key)
        return value

    @field_validator("service_account")
    @classmethod
    def _service_account_name(cls, value: str | None) -> str | None:
        return None if value is None else _object_name(value, "ServiceAccount")

    @model_validator(mode="after")
    def _env_set_once(self) -> Self:
        both = sorted(set(self.env) & set(self.env_refs))
        if both:
            raise messages.rule_error(
                f"and predictor.env both set {messages.show(both[0])}; keep one of them",
                field="env_refs",
            )
        return self

    @model_validator(mode="after")
    def _one_cache_per_replica(self) -> Self:
        """The model cache lives in the process: several would each hold their own models
        within their own budget, and the budget would mean nothing (Cortex's rule too)."""
        if self.models is None:
            return self
        if self.processes_per_replica != 1:
            raise messages.rule_error(
                "must be 1 with predictor.models (each process would hold its own cache); "
                "raise threads_per_process instead",
                self.processes_per_replica,
                field="processes_per_replica",
            )
        if self.server_side_batching is not None:
            raise messages.rule_error(
                "cannot be combined with predictor.models (one batch would mix models); "
                "remove one of them",
                field="server_side_batching",
            )
        return self

    @field_validator("path")
    @classmethod
    def _path_is_python_file(cls, value: str, info: ValidationInfo) -> str:
        if not value.endswith(".py"):
            raise messages.rule_error("must end with .py", value)
        _project_file(value, info, folder=False)
        return value

    @field_validator("python_path")
    @classmethod
    def _python_path_is_folder(cls, value: str, info: ValidationInfo) -> str:
        if value:
            _project_file(value, info, folder=True)
        return value


def _check_json(value: object, path: str) -> None:
    """``predictor.config`` reaches the pods as JSON: only what JSON can say, read back the same
    (string keys, finite numbers). The loader bounds its depth, so recursion stays shallow."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                raise messages.rule_error("must be a string", key, field=f"{path} key".strip())
            _check_json(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}.{index}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise messages.rule_error("must be a finite number (JSON has no inf or nan)", value, path)
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise messages.rule_error(
            "must be a string, number, boolean, null, list or mapping", str(value), path
        )


def _env_text(key: object, value: object) -> object:
    if isinstance(value, str) and "\x00" in value:
        raise messages.rule_error(
            f"{messages.show(key)} holds a NUL character, which no process environment can "
            "carry; remove it"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class Compute(_Model):
    """Resources requested for each replica."""

    cpu: units.CpuQuantity | None = "200m"
    mem: units.MemQuantity | None = None
    gpu: Int = Field(default=0, ge=0, le=INT32_MAX)

    @field_validator("cpu")
    @classmethod
    def _cpu_minimum(cls, value: str | None) -> str | None:
        if value is not None and units.cpu_millicores(value) < 20:
            raise messages.rule_error("must be >= 20m", value)
        return value

    @field_validator("mem")
    @classmethod
    def _mem_minimum(cls, value: str | None) -> str | None:
        if value is not None and units.mem_bytes(value) < 20 * 2**20:
            raise messages.rule_error("must be >= 20Mi", value)
        return value


class Autoscaling(_Model):
    """Replica bounds and the autoscaler's knobs; two defaults are filled by ``APISpec``.

    ``min_replicas: 0`` lets an idle API scale to zero (docs/scale-to-zero.md): the last three
    fields say when (``scale_to_zero_after`` without a request), how many requests wait for it
    to wake (``max_queue_length``) and how long (``scale_from_zero_timeout``: long enough to
    provision a GPU node). They change nothing while ``min_replicas`` is 1 or more.
    """

    min_replicas: Int = Field(default=1, ge=0, le=INT32_MAX)
    max_replicas: Int = Field(default=100, ge=1, le=INT32_MAX)
    init_replicas: Int | None = Field(default=None, ge=0, le=INT32_MAX)
    max_replica_concurrency: Int = Field(default=1024, ge=1, le=30000)
    target_replica_concurrency: Float | None = Field(default=None, gt=0)
    window: units.Duration = Field(default="60s", validate_default=True)
    downscale_stabilization_period: units.Duration = Field(default="5m", validate_default=True)
    upscale_stabilization_period: units.Duration = Field(default="1m", validate_default=True)
    max_downscale_factor: Float = Field(default=0.75, ge=0, lt=1)
    max_upscale_factor: Float = Field(default=1.5, gt=1)
    downscale_tolerance: Float = Field(default=0.05, ge=0, lt=1)
    upscale_tolerance: Float = Field(default=0.05, ge=0, lt=1)
    scale_to_zero_after: units.Duration = Field(default="5m", validate_default=True)
    max_queue_length: Int = Field(default=100, ge=1, le=100_000)
    scale_from_zero_timeout: units.Duration = Field(default="5m", validate_default=True)

    @field_validator("scale_to_zero_after", "scale_from_zero_timeout")
    @classmethod
    def _at_least_a_second(cls, value: float) -> float:
        if value < 1:
            raise messages.rule_error(
                "must be at least 1s (e.g. 30s, 5m)", units.format_duration(value)
            )
        return value

    @field_validator("window")
    @classmethod
    def _window_in_ticks(cls, value: float) -> float:
        if value < 10 or Decimal(str(value)) % 10 != 0:
            raise messages.rule_error(
                "must be at least 10s and a multiple of 10s (e.g. 10s, 60s, 2m)",
                units.format_duration(value),
            )
        return value


def _is_zero(value: int | str) -> bool:
    return value in (0, "0%")


class UpdateStrategy(_Model):
    """How a rolling update replaces replicas (a Deployment's ``rollingUpdate``)."""

    max_surge: units.IntOrPercent = "25%"
    max_unavailable: units.IntOrPercent = "25%"

    @field_validator("max_unavailable")
    @classmethod
    def _unavailable_at_most_all(cls, value: int | str) -> int | str:
        if isinstance(value, str) and int(value[:-1]) > 100:
            raise messages.rule_error("must be at most 100%", value)
        return value

    @model_validator(mode="after")
    def _rollout_can_progress(self) -> Self:
        if _is_zero(self.max_surge) and _is_zero(self.max_unavailable):
            raise messages.rule_error(
                "and update_strategy.max_unavailable cannot both be 0 (a rolling update could "
                "never progress); set one of them above 0",
                field="max_surge",
            )
        return self


class Auth(_Model):
    """Bearer-token authentication of the API's routes (docs/security.md): requests must carry
    ``Authorization: Bearer <the value of the variable token_env>``. Health and readiness stay
    open for the kubelet and load balancers; metrics too unless ``protect_metrics``."""

    token_env: str = Field(max_length=253)
    protect_metrics: Bool = False

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        if value.startswith("CORTEX_") or not _ENV_NAME.fullmatch(value):
            raise messages.rule_error(
                "must be the name of an environment variable of predictor.env_refs "
                "(letters, digits, '_', '-', '.'; not starting with a digit or CORTEX_)",
                value,
            )
        return value


class Networking(_Model):
    """Where the API answers: its path, on a cluster its host name (what the route says;
    docs/routing.md), in the local environment its port; and how long a prediction may take
    before its response starts (``timeout``: the runtime answers 504 then, and on a cluster
    the route's request timeout is the same value)."""

    endpoint: str | None = Field(default=None, max_length=1000)
    hostname: str | None = Field(default=None, max_length=253)
    timeout: units.Duration = Field(default="300s", validate_default=True)
    local_port: Int | None = Field(default=None, ge=1, le=65535)
    auth: Auth | None = None

    @field_validator("hostname")
    @classmethod
    def _hostname_is_dns_name(cls, value: str | None) -> str | None:
        if value is not None and not _HOSTNAME.fullmatch(value):
            raise messages.rule_error(
                "must be a lowercase DNS name such as api.example.com (or *.example.com)", value
            )
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, value: float) -> float:
        if value < 0.001 or value != round(value, 3):
            raise messages.rule_error(
                "must be at least 1ms, in whole milliseconds (e.g. 30s, 2m)",
                units.format_duration(value),
            )
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_path(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _ENDPOINT.fullmatch(value):
            raise messages.rule_error(
                "must start with / and use only letters, digits and . _ ~ / -", value
            )
        if value in RESERVED_ENDPOINTS or value.startswith("/v2/health"):
            raise messages.rule_error("is reserved for the runtime's health and metrics", value)
        segments = value.split("/")
        if "." in segments or ".." in segments:
            raise messages.rule_error(
                "must not contain . or .. segments (gateways resolve them away); write the path "
                "they stand for",
                value,
            )
        if not value.strip("/"):
            raise messages.rule_error(
                "would route every request of the gateway to this API; use a path of its own, "
                "such as the default /<api name>",
                value,
            )
        if "" in segments[1:-1]:
            raise messages.rule_error(
                "must not contain an empty segment (//): gateways merge or refuse it", value
            )
        return value


class Project(_Model):
    """Where the project folder comes from on a cluster (filled by ``cortex deploy``): the
    ConfigMap holding its archive, and the archive's SHA-256 (so changed code changes the
    spec, and with it the pods)."""

    config_map: str | None = Field(default=None, alias="configMap")
    sha256: str | None = None

    @field_validator("config_map")
    @classmethod
    def _config_map_name(cls, value: str | None) -> str | None:
        return None if value is None else _object_name(value, "ConfigMap")

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.fullmatch(value):
            raise messages.rule_error("must be a SHA-256 digest: 64 lowercase hex digits", value)
        return value


def _concurrency(predictor: Predictor) -> int:
    """Requests one replica serves at once: the default of ``target_replica_concurrency``.

    A process that batches fills a batch only with ``max_batch_size`` requests in flight, so it
    counts for at least that many: a target of one request per thread would keep every batch
    at one request (the autoscaler adding replicas instead of filling batches).
    """
    per_process = predictor.threads_per_process
    if predictor.server_side_batching is not None:
        per_process = max(per_process, predictor.server_side_batching.max_batch_size)
    return predictor.processes_per_replica * per_process


class APISpec(_Model):
    """One API without its name and kind: the ``spec`` of a ``RealtimeAPI`` resource."""

    predictor: Predictor
    compute: Compute = Compute()
    autoscaling: Autoscaling = Autoscaling()
    update_strategy: UpdateStrategy = UpdateStrategy()
    networking: Networking = Networking()
    project: Project = Project()

    @model_validator(mode="before")
    @classmethod
    def _null_sections_are_defaults(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        optional = ("compute", "autoscaling", "update_strategy", "networking", "project")
        return {k: v for k, v in data.items() if not (k in optional and v is None)}

    @model_validator(mode="after")
    def _token_from_a_secret(self) -> Self:
        """The token of ``networking.auth`` is read from a Secret, never written in the spec
        (anyone who can read the resource or ``cortex.yaml`` would read it)."""
        auth = self.networking.auth
        if auth is None:
            return self
        name, field = auth.token_env, "networking.auth.token_env"
        ref = self.predictor.env_refs.get(name)
        if name in self.predictor.env:
            rule = (
                "is set in plain text by predictor.env; move it to predictor.env_refs, e.g. "
                f"{name}: {{secret: api-token, key: token}} (docs/security.md)"
            )
        elif ref is None:
            rule = (
                "must be a variable of predictor.env_refs read from a Secret, e.g. "
                f"{name}: {{secret: api-token, key: token}} (docs/security.md)"
            )
        elif ref.secret is None:
            rule = f"must be read from a Secret, not ConfigMap '{ref.config_map}'"
        elif ref.optional:
            rule = "must not be optional in predictor.env_refs: without it the API cannot serve"
        else:
            return self
        raise messages.rule_error(rule, name, field=field)

    @model_validator(mode="after")
    def _fill_autoscaling(self) -> Self:
        scaling = self.autoscaling
        low, high = scaling.min_replicas, scaling.max_replicas
        if low > high:
            raise messages.rule_error(
                f"must be <= autoscaling.max_replicas ({high})", low, "autoscaling.min_replicas"
            )
        init = self.init_replicas
        if not low <= init <= high:
            raise messages.rule_error(
                f"must be between autoscaling.min_replicas ({low}) and "
                f"autoscaling.max_replicas ({high})",
                init,
                "autoscaling.init_replicas",
            )
        target: float | None = scaling.target_replica_concurrency
        default = ""
        if target is None:
            target = _concurrency(self.predictor)
            per_process = "threads_per_process"
            if self.predictor.server_side_batching is not None:
                per_process = "max(threads_per_process, max_batch_size)"
            default = f"(the default, processes_per_replica x {per_process}) "
        if target > scaling.max_replica_concurrency:
            raise messages.rule_error(
                f"{default}must be <= autoscaling.max_replica_concurrency "
                f"({scaling.max_replica_concurrency})",
                target,
                "autoscaling.target_replica_concurrency",
            )
        filled = {"init_replicas": init, "target_replica_concurrency": float(target)}
        # Frozen models: replace the section instead of mutating a possibly shared instance.
        object.__setattr__(self, "autoscaling", scaling.model_copy(update=filled))
        return self

    @property
    def init_replicas(self) -> int:
        """``autoscaling.init_replicas``, its default filled in: ``min_replicas``, or 1 for an
        API that may scale to zero (a deploy then shows at once that the API starts)."""
        scaling = self.autoscaling
        if scaling.init_replicas is not None:
            return scaling.init_replicas
        return max(scaling.min_replicas, 1)

    @property
    def scales_to_zero(self) -> bool:
        """Whether the API may scale to zero (``min_replicas: 0``): its route goes through the
        activator, which holds requests while it wakes."""
        return self.autoscaling.min_replicas == 0

    @property
    def target_replica_concurrency(self) -> float:
        """``autoscaling.target_replica_concurrency``, its default (processes x threads, or x
        ``max_batch_size`` when batching) filled in."""
        target = self.autoscaling.target_replica_concurrency
        return float(_concurrency(self.predictor)) if target is None else target

    def unused_fields(self) -> dict[str, set[str]]:
        """Fields a later release added, as ``model_dump(exclude=...)`` takes them, while this
        API does not use them: left out of its hash and of the spec its pods run, so upgrading
        cortex restarts no pod of an API that does not use what the upgrade added."""
        unused: dict[str, set[str]] = {}
        if self.predictor.models is None:
            unused["predictor"] = {"models"}
        if not self.scales_to_zero:
            unused["autoscaling"] = set(SCALE_TO_ZERO_FIELDS)
        return unused


class RealtimeAPI(APISpec):
    """One API of ``cortex.yaml``: an ``APISpec`` with its ``name`` and ``kind``."""

    name: str
    kind: Kind

    @field_validator("name")
    @classmethod
    def _name_is_dns_label(cls, value: str) -> str:
        if len(value) > NAME_MAX_LENGTH:
            raise messages.rule_error(
                f"must be at most {NAME_MAX_LENGTH} characters long (it has {len(value)})", value
            )
        if not _DNS_1035.fullmatch(value):
            raise messages.rule_error(
                "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a "
                "letter and ending with a letter or digit",
                value,
            )
        return value

    @model_validator(mode="after")
    def _fill_endpoint(self) -> Self:
        if self.networking.endpoint is None:
            networking = self.networking.model_copy(update={"endpoint": f"/{self.name}"})
            object.__setattr__(self, "networking", networking)
        return self

    @property
    def endpoint(self) -> str:
        """``networking.endpoint``, always set on a validated ``RealtimeAPI``."""
        return self.networking.endpoint or f"/{self.name}"
