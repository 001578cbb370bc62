"""Renders what ``cortex deploy -e CLUSTER`` writes: the ``RealtimeAPI`` resource and the
ConfigMap with the project's archive. No I/O here.

The ConfigMap's name carries the archive's hash (``<name>-project-<12 hex>``) and it is
immutable: new code is a new ConfigMap, so a rollout's old pods keep the code they started with
while new pods get the new one, and a redeploy of unchanged code writes nothing.
"""

from __future__ import annotations

import base64
from typing import Any

from cortex import contracts
from cortex.k8s import labels
from cortex.k8s.deployment import PROJECT_ARCHIVE_KEY
from cortex.spec import RealtimeAPI

__all__ = ["project_config_map", "project_config_map_name", "realtime_api_resource"]

_HASH_DIGITS = 12


def project_config_map_name(api_name: str, sha256: str) -> str:
    """``<name>-project-<first 12 hex digits of the archive's SHA-256>``."""
    return f"{api_name}-project-{sha256[:_HASH_DIGITS]}"


def realtime_api_resource(api: RealtimeAPI, namespace: str) -> dict[str, Any]:
    """The ``RealtimeAPI`` custom resource of ``api``: its spec without ``name`` and ``kind``."""
    spec = api.model_dump(mode="json", by_alias=True, exclude={"name", "kind"})
    return {
        "apiVersion": contracts.API_VERSION,
        "kind": contracts.KIND,
        "metadata": {
            "name": api.name,
            "namespace": namespace,
            "labels": {labels.LABEL_MANAGED_BY: labels.MANAGED_BY},
        },
        "spec": spec,
    }


def project_config_map(
    api_name: str,
    namespace: str,
    archive: bytes,
    sha256: str,
    owner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The immutable ConfigMap holding the project archive of ``api_name``.

    ``owner`` (an ownerReference to the ``RealtimeAPI``) makes deleting the API delete its code.
    """
    metadata: dict[str, Any] = {
        "name": project_config_map_name(api_name, sha256),
        "namespace": namespace,
        "labels": {labels.LABEL_API_NAME: api_name, labels.LABEL_MANAGED_BY: labels.MANAGED_BY},
        "annotations": {f"{contracts.GROUP}/project-sha256": sha256},
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "immutable": True,
        "binaryData": {PROJECT_ARCHIVE_KEY: base64.b64encode(archive).decode("ascii")},
    }
