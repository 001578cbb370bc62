"""Renders the ``RealtimeAPI`` CustomResourceDefinition, its spec generated from the models.

Its coordinates (group, version, kind, names) are :mod:`cortex.contracts`'. ``spec`` is
:class:`cortex.spec.APISpec` turned into a structural schema (see :mod:`cortex.k8s.schema`);
``metadata.name`` follows the API name rule (:data:`cortex.spec.NAME_PATTERN`, at most
:data:`cortex.spec.NAME_MAX_LENGTH` characters); ``status`` is written here by hand: it is what
the operator reports.
``operator/crd.yaml`` is :func:`crd_yaml`, written by ``python scripts/gen_crd.py`` (a test
fails when it differs). No I/O here.
"""

from __future__ import annotations

from typing import Any

import yaml

from cortex import contracts
from cortex.k8s import schema
from cortex.spec import NAME_MAX_LENGTH, NAME_PATTERN, APISpec

__all__ = ["REPLICAS_FIELD", "SCALE", "crd_yaml", "custom_resource_definition", "status_schema"]

REPLICAS_FIELD = "replicas"

# The /scale subresource: `kubectl scale rapi`, the HPA (and KEDA) write spec.replicas, the
# operator passes it on to the Deployment; status.selector finds the pods for the metrics.
SCALE = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}
_HEADER = (
    "# Generated from cortex/spec by `python scripts/gen_crd.py`; do not edit by hand.\n"
    "# The RealtimeAPI custom resource: spec = one API of cortex.yaml without name and kind.\n"
)


def _integer(description: str) -> dict[str, Any]:
    return {"type": "integer", "description": description, "minimum": 0}


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _condition() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": _string("The aspect this condition is about, e.g. Ready or Progressing."),
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": _string("One CamelCase word saying why."),
            "message": _string("Human-readable details."),
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        },
    }


def status_schema() -> dict[str, Any]:
    """What the operator writes to ``status``."""
    return {
        "type": "object",
        "description": "Written by the operator; read it with `kubectl get rapi`.",
        "properties": {
            "status": _string(" | ".join(state.value for state in contracts.APIState)),
            "message": _string("Why the API is not live, e.g. the spec error."),
            "requested": _integer("Replicas the Deployment asks for."),
            "ready": _integer("Replicas that answer /readyz."),
            "upToDate": _integer("Replicas running the current spec."),
            "endpoint": _string("The path the route sends to the API."),
            "replicas": _integer("Replicas of the Deployment now (the /scale subresource's)."),
            "selector": _string("The label selector of the API's pods (for the /scale)."),
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The metadata.generation this status describes.",
                "minimum": 0,
            },
            "conditions": {
                "type": "array",
                "items": _condition(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        },
    }


def _spec_schema() -> dict[str, Any]:
    """The API spec, plus ``replicas``: no field of cortex.yaml, the /scale subresource's."""
    spec = schema.structural_schema(APISpec)
    spec["properties"][REPLICAS_FIELD] = _integer(
        "Replicas asked for through the /scale subresource (the autoscaler, `kubectl scale`); "
        "unset: autoscaling.init_replicas. Not part of cortex.yaml."
    )
    return spec


def _resource_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A model-serving API: a Python predictor behind an autoscaled endpoint.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {
                        "type": "string",
                        "maxLength": NAME_MAX_LENGTH,
                        "pattern": NAME_PATTERN,
                    }
                },
            },
            "spec": _spec_schema(),
            "status": status_schema(),
        },
    }


def _column(name: str, kind: str, path: str) -> dict[str, str]:
    return {"name": name, "type": kind, "jsonPath": path}


def custom_resource_definition() -> dict[str, Any]:
    """The ``apiextensions.k8s.io/v1`` CustomResourceDefinition ``realtimeapis.cortex.dev``."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": contracts.CRD_NAME,
            "labels": {"app.kubernetes.io/part-of": "cortex"},
        },
        "spec": {
            "group": contracts.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": contracts.KIND,
                "listKind": f"{contracts.KIND}List",
                "plural": contracts.PLURAL,
                "singular": contracts.SINGULAR,
                "shortNames": list(contracts.SHORT_NAMES),
                "categories": ["cortex"],
            },
            "versions": [
                {
                    "name": contracts.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, "scale": dict(SCALE)},
                    "additionalPrinterColumns": [
                        _column("Status", "string", ".status.status"),
                        _column("Requested", "integer", ".status.requested"),
                        _column("Ready", "integer", ".status.ready"),
                        _column("Up-to-date", "integer", ".status.upToDate"),
                        _column("Endpoint", "string", ".status.endpoint"),
                        _column("Age", "date", ".metadata.creationTimestamp"),
                    ],
                    "schema": {"openAPIV3Schema": _resource_schema()},
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The text of ``operator/crd.yaml``: a header comment and the CRD as YAML."""
    body = yaml.safe_dump(
        custom_resource_definition(), sort_keys=False, width=100, allow_unicode=True
    )
    return _HEADER + "---\n" + body
