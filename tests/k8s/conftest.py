"""Factories for the manifest tests: APIs as the operator parses them, owners, schema checks."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from cortex.k8s import OperatorSettings, Owner, render
from cortex.spec import RealtimeAPI, parse_api_spec
from tests.fakeapi import gateways

REPO = Path(__file__).resolve().parents[2]
OPERATOR_DIR = REPO / "operator"
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")  # the oldest supported and the newest bundled
OWNER_UID = "0f6c2d4e-8a1b-4c3d-9e5f-7a8b9c0d1e2f"
# CRDs of the custom resources we render (no built-in schema), for the fields we use.
CRDS_DIR = Path(__file__).parent / "crds"
GATEWAY = OperatorSettings(routing="gateway", gateway=("gateway-system", "cortex"))
INGRESS = OperatorSettings(routing="ingress", ingress_class="traefik")
ROUTINGS = {"gateway": GATEWAY, "ingress": INGRESS, "none": OperatorSettings()}


def make_api(name: str = "iris", **sections: Any) -> RealtimeAPI:
    """An API as the operator parses a resource; ``predictor=`` merges over a minimal predictor."""
    spec: dict[str, Any] = {"predictor": {"type": "python", "path": "predictor.py"}}
    spec["predictor"].update(sections.pop("predictor", {}))
    spec.update(sections)
    return parse_api_spec(name, spec)


def owner_of(api: RealtimeAPI, namespace: str = "ml") -> Owner:
    return Owner(name=api.name, namespace=namespace, uid=OWNER_UID)


def render_api(api: RealtimeAPI, settings: OperatorSettings | None = None) -> list[dict[str, Any]]:
    return render(api, owner_of(api), settings or OperatorSettings())


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [api_container] = deployment["spec"]["template"]["spec"]["containers"]
    return api_container


def crd_manifest(name: str) -> dict[str, Any]:
    """A CRD of :data:`CRDS_DIR` by file stem, e.g. ``scaledobjects.keda.sh``."""
    loaded: dict[str, Any] = yaml.safe_load((CRDS_DIR / f"{name}.yaml").read_text())
    return loaded


@functools.cache
def _custom_validators() -> dict[str, jsonschema.Draft4Validator]:
    validators = {}
    for path in sorted(CRDS_DIR.glob("*.yaml")):
        spec = crd_manifest(path.stem)["spec"]
        for version in spec["versions"]:
            kind = f"{spec['group']}/{version['name']}/{spec['names']['kind']}"
            validators[kind] = cr_validator(version["schema"]["openAPIV3Schema"])
    return validators


def validate_k8s(obj: dict[str, Any], version: str) -> None:
    """Raises unless ``obj`` passes kubernetes-validate --strict for ``version``; a custom
    resource of :data:`CRDS_DIR` (KEDA's ScaledObject...) its CRD's schema instead."""
    validator = _custom_validators().get(f"{obj['apiVersion']}/{obj['kind']}")
    if validator is not None:
        validator.validate(obj)
        return
    kubernetes_validate.validate(obj, version, strict=True)


def validate_manifest(obj: dict[str, Any], version: str) -> None:
    """:func:`validate_k8s` for built-in kinds; custom resources (HTTPRoute) against the schema of
    their CRD kept in the tests (tests/fakeapi/crds), as strictly."""
    crds = {crd["spec"]["names"]["kind"]: crd for crd in gateways.crds()}
    crd = crds.get(obj["kind"])
    if crd is None:
        validate_k8s(obj, version)
        return
    [served] = [v for v in crd["spec"]["versions"] if obj["apiVersion"].endswith("/" + v["name"])]
    cr_validator(served["schema"]["openAPIV3Schema"]).validate(obj)


def cr_validator(open_api: dict[str, Any]) -> jsonschema.Draft4Validator:
    """A jsonschema validator for a CRD's openAPIV3Schema, as strict as ``kubectl apply``.

    OpenAPI's ``nullable`` becomes a null type; objects with properties reject unknown fields,
    as the API server's strict field validation (kubectl's default) does. Draft 4 reads the
    boolean ``exclusiveMinimum`` the way OpenAPI 3.0 does.
    """
    schema = _to_json_schema(copy.deepcopy(open_api))
    schema["properties"]["metadata"].pop("additionalProperties", None)  # namespace, labels...
    return jsonschema.Draft4Validator(schema)


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value) for key, value in node.items() if key != "default"}
    if out.pop("nullable", False):
        out["type"] = [out["type"], "null"]
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out
