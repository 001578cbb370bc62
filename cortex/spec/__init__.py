"""The API spec: what ``cortex.yaml`` and a ``RealtimeAPI`` resource may say. Pure, no servers.

Layers inside the package: ``messages`` (error wording) <- ``units`` (durations, quantities)
<- ``multimodel`` (``predictor.models``) <- ``models`` (pydantic models, defaults, rules)
<- ``loading`` (YAML, files, hashing).
"""

from __future__ import annotations

from cortex.spec.loading import load_specs, parse_api_spec, parse_specs, spec_hash
from cortex.spec.models import (
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    SUPPORTED_KINDS,
    APISpec,
    Autoscaling,
    Compute,
    Dependencies,
    EnvRef,
    Networking,
    Predictor,
    Project,
    RealtimeAPI,
    ServerSideBatching,
    UpdateStrategy,
)
from cortex.spec.multimodel import DEFAULT_MODEL, MODEL_NAME_PATTERN, ModelPath, Models, is_url
from cortex.spec.units import (
    CpuQuantity,
    Duration,
    IntOrPercent,
    MemQuantity,
    cpu_millicores,
    format_duration,
    mem_bytes,
    parse_duration,
    parse_quantity,
)

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_NAME_PATTERN",
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "SUPPORTED_KINDS",
    "APISpec",
    "Autoscaling",
    "Compute",
    "CpuQuantity",
    "Dependencies",
    "Duration",
    "EnvRef",
    "IntOrPercent",
    "MemQuantity",
    "ModelPath",
    "Models",
    "Networking",
    "Predictor",
    "Project",
    "RealtimeAPI",
    "ServerSideBatching",
    "UpdateStrategy",
    "cpu_millicores",
    "format_duration",
    "is_url",
    "load_specs",
    "mem_bytes",
    "parse_api_spec",
    "parse_duration",
    "parse_quantity",
    "parse_specs",
    "spec_hash",
]
