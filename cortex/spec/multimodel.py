"""``predictor.models``: the models a multi-model API serves, and its cache's budgets. Pure.

As in Cortex v0.33: one model (``path``), a list of named ones (``paths``) or every sub-folder
of a folder (``dir``); ``cache_size`` models in memory and ``disk_cache_size`` on local disk, plus
``max_bytes``, a memory budget the cache never exceeds while any model can be evicted
(docs/multi-model.md). A source is a local path (relative to the project folder) or an fsspec
URL (``file://``, ``s3://``, ``gs://``, ``hf://``...); which protocols work is the runtime's
business (their packages are installed there or not), so only the spelling is checked here.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cortex.spec import messages, units

__all__ = ["DEFAULT_MODEL", "MODEL_NAME_PATTERN", "ModelPath", "Models", "is_url"]

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$"
"""A model's name: what ``?model=`` and ``get_model(name)`` say, and a folder of the cache."""
DEFAULT_MODEL = "default"
"""The name of the one model of ``models.path``."""

_NAME = re.compile(MODEL_NAME_PATTERN)
_URL = re.compile(r"([a-z][a-z0-9+.-]*)://.+")
_MIN_POLL = 0.1

Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def is_url(source: str) -> bool:
    """Whether ``source`` names its protocol (``s3://...``) rather than being a local path."""
    return _URL.fullmatch(source) is not None


def _source(value: str, info: ValidationInfo) -> str:
    """A URL, an absolute path, or a folder inside the project (checked given a base_dir)."""
    if not value or "\x00" in value:
        raise messages.rule_error("must be a folder or a URL such as s3://bucket/models", value)
    if is_url(value) or PurePosixPath(value).is_absolute():
        return value
    relative = PurePosixPath(value.replace("\\", "/"))
    if ".." in relative.parts:
        raise messages.rule_error(
            "must be a URL, an absolute path or a folder inside the project folder", value
        )
    base = (info.context or {}).get("base_dir")
    if base is not None and not (Path(base) / relative).is_dir():
        raise messages.rule_error(
            f"is not a folder (looked for {Path(base) / relative}); give a folder of the "
            "project, an absolute path or a URL",
            value,
        )
    return value


class ModelPath(_Model):
    """One named model of ``models.paths``."""

    name: str
    path: str

    @field_validator("name")
    @classmethod
    def _model_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise messages.rule_error(
                "must be a model name: letters, digits, '-', '_' and '.', starting with a "
                "letter or digit, at most 63 characters",
                value,
            )
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str, info: ValidationInfo) -> str:
        return _source(value, info)


class Models(_Model):
    """The models of a multi-model API (``predictor.models``) and its cache's budgets."""

    path: str | None = None
    paths: list[ModelPath] | None = None
    dir: str | None = None
    cache_size: Int | None = Field(default=None, ge=1, le=2**31 - 1)
    disk_cache_size: Int | None = Field(default=None, ge=1, le=2**31 - 1)
    max_bytes: units.MemQuantity | None = None
    poll_interval: units.Duration = Field(default="10s", validate_default=True)
    label_models: Bool = True

    @field_validator("path", "dir")
    @classmethod
    def _sources(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _source(value, info)

    @field_validator("max_bytes")
    @classmethod
    def _some_bytes(cls, value: str | None) -> str | None:
        if value is not None and units.mem_bytes(value) < 1:
            raise messages.rule_error("must be at least one byte (e.g. 2Gi)", value)
        return value

    @field_validator("poll_interval")
    @classmethod
    def _poll(cls, value: float) -> float:
        if 0 < value < _MIN_POLL:
            raise messages.rule_error(
                "must be 0 (no polling) or at least 100ms (e.g. 10s)", units.format_duration(value)
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [name for name in ("path", "paths", "dir") if getattr(self, name) is not None]
        if len(given) != 1:
            said = f" (it sets {' and '.join(given)})" if given else ""
            raise messages.rule_error(f"must set exactly one of path, paths and dir{said}")
        names = [model.name for model in self.paths or ()]
        if self.paths is not None and not names:
            raise messages.rule_error("must list at least one {name, path}", field="paths")
        for index, name in enumerate(names):
            if name in names[:index]:
                raise messages.rule_error(
                    "is used by two models; give each model its own name",
                    name,
                    field=f"paths.{index}.name",
                )
        return self

    @model_validator(mode="after")
    def _memory_within_disk(self) -> Self:
        memory, disk = self.cache_size, self.disk_cache_size
        if memory is not None and disk is not None and memory > disk:
            raise messages.rule_error(
                f"must be <= predictor.models.disk_cache_size ({disk}): a downloaded model in "
                "memory also has its copy on disk",
                memory,
                field="cache_size",
            )
        return self

    @property
    def max_byte_count(self) -> int | None:
        """``max_bytes`` in bytes, None when unset."""
        return None if self.max_bytes is None else units.mem_bytes(self.max_bytes)
