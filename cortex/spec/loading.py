"""Reads API specs from YAML text, a file or a custom resource's spec, and hashes them.

Every failure is a :class:`cortex.errors.SpecError` with a one-line message naming the API (or
the file and line) and the rule that failed; no pydantic text or traceback gets through.
Only :func:`load_specs` touches the disk (the file itself; the models check the project folder).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cortex import contracts, errors
from cortex.spec import messages, models, yamltext

__all__ = ["load_specs", "parse_api_spec", "parse_specs", "spec_hash"]

# Kinds Cortex had that this project does not implement (yet).
_LATER_KINDS = ("BatchAPI", "AsyncAPI", "TaskAPI", "TrafficSplitter")
_EXAMPLE = (
    f"- name: my-api, kind: {contracts.KIND}, predictor: {{type: python, path: predictor.py}}"
)


def _read_yaml(text: str, source: str) -> object:
    try:
        return yamltext.read(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise errors.SpecError(f"{source}: {where}YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise errors.SpecError(
            f"{source}: YAML syntax error: {' '.join(str(exc).split())}"
        ) from None


def _validate(data: Mapping[str, Any], label: str, base_dir: Path | None) -> models.RealtimeAPI:
    context = {"base_dir": base_dir.resolve() if base_dir is not None else None}
    try:
        return models.RealtimeAPI.model_validate(data, context=context)
    except ValidationError as exc:
        lines = messages.describe(exc, models.RealtimeAPI)
        raise errors.SpecError("\n".join(f"{label}: {line}" for line in lines)) from None


def _check_kind(kind: object, label: str) -> None:
    supported = ", ".join(models.SUPPORTED_KINDS)
    if kind is None:
        raise errors.SpecError(f"{label}: kind is required (supported: {supported})")
    if kind in models.SUPPORTED_KINDS:
        return
    if kind in _LATER_KINDS:
        raise errors.SpecError(
            f"{label}: kind '{kind}' is not supported yet; supported: {supported}"
        )
    raise errors.SpecError(
        f"{label}: kind {messages.show(kind)} is not a known kind; supported: {supported}"
    )


def _parse_item(item: object, index: int, base_dir: Path | None) -> models.RealtimeAPI:
    if not isinstance(item, dict):
        raise errors.SpecError(
            f"api #{index}: must be a mapping of fields (name, kind, predictor, ...), "
            f"got {messages.show(item)}"
        )
    name = item.get("name")
    if name is None:
        raise errors.SpecError(f"api #{index} (no name): name is required")
    if not isinstance(name, str):
        raise errors.SpecError(f"api #{index}: name {messages.show(name)} must be a string")
    label = f"api {messages.show(name)}"
    _check_kind(item.get("kind"), label)
    return _validate(item, label, base_dir)


def _check_unique(apis: list[models.RealtimeAPI], source: str) -> None:
    """Names, endpoints and local ports must differ between the APIs of one file."""
    names: dict[str, int] = {}
    endpoints: dict[str, str] = {}
    ports: dict[int, str] = {}
    for index, api in enumerate(apis, 1):
        label = f"api '{api.name}'"
        if api.name in names:
            raise errors.SpecError(
                f"{label}: name '{api.name}' is used twice (api #{names[api.name]} and "
                f"api #{index}); names must be unique in {source}"
            )
        names[api.name] = index
        if api.endpoint in endpoints:
            raise errors.SpecError(
                f"{label}: networking.endpoint '{api.endpoint}' is already used by "
                f"api '{endpoints[api.endpoint]}'"
            )
        endpoints[api.endpoint] = api.name
        port = api.networking.local_port
        if port is not None and port in ports:
            raise errors.SpecError(
                f"{label}: networking.local_port {port} is already used by api '{ports[port]}'"
            )
        if port is not None:
            ports[port] = api.name


def parse_specs(
    text: str, base_dir: Path | None = None, *, source: str = "cortex.yaml"
) -> list[models.RealtimeAPI]:
    """The APIs of a ``cortex.yaml`` text: a list of APIs, or a single API mapping.

    With ``base_dir`` (the spec file's folder), ``predictor.path`` and ``predictor.python_path``
    must exist inside it. ``source`` names the file in messages.
    """
    data = _read_yaml(text, source)
    if isinstance(data, dict):
        data = [data]
    if data is None or data == []:
        raise errors.SpecError(f"{source}: no APIs defined; add a list of APIs, e.g. {_EXAMPLE}")
    if not isinstance(data, list):
        raise errors.SpecError(
            f"{source}: expected a list of APIs, got {messages.show(data)}; e.g. {_EXAMPLE}"
        )
    apis = [_parse_item(item, index, base_dir) for index, item in enumerate(data, 1)]
    _check_unique(apis, source)
    return apis


def load_specs(path: Path) -> list[models.RealtimeAPI]:
    """The APIs of a spec file (or of ``cortex.yaml`` in a folder), checked against its folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "cortex.yaml"
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise errors.SpecError(
            f"{source}: file not found (looked in {path.resolve()}); "
            "create it or pass the config file's path"
        ) from None
    except UnicodeDecodeError:
        raise errors.SpecError(f"{source}: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise errors.SpecError(f"{source}: cannot read the file ({exc.strerror})") from None
    return parse_specs(text, path.resolve().parent, source=source)


def parse_api_spec(
    name: str, spec: Mapping[str, Any], base_dir: Path | None = None
) -> models.RealtimeAPI:
    """The API described by a ``RealtimeAPI`` resource: ``metadata.name`` and its ``spec``.

    ``spec`` holds the fields of :class:`APISpec` (no ``name`` or ``kind``).
    """
    label = f"api {messages.show(name)}"
    if not isinstance(spec, Mapping):
        raise errors.SpecError(
            f"{label}: spec must be a mapping of fields, got {messages.show(spec)}"
        )
    for key in ("name", "kind"):
        if key in spec:
            raise errors.SpecError(
                f"{label}: unknown field '{key}' in a resource spec "
                "(the name is metadata.name, the kind is the resource's kind)"
            )
    return _validate({**spec, "name": name, "kind": contracts.KIND}, label, base_dir)


def spec_hash(api: models.APISpec) -> str:
    """A short, stable hash of a validated spec, defaults included (16 hex digits).

    Equal for specs that validate to the same API whatever their key order or which defaults
    they spell out; different when any field differs. The scale-to-zero fields count only for
    an API that may scale to zero: elsewhere they change nothing, and leaving them out kept the
    hash (and every rendered child) of the APIs that existed before them.
    """
    unused = None if api.scales_to_zero else {"autoscaling": set(models.SCALE_TO_ZERO_FIELDS)}
    data = api.model_dump(mode="json", by_alias=True, exclude=unused)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
