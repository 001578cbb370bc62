"""The public surface of ``cortex.k8s``: what the operator, scripts and tests may import.

A change to it must be deliberate: update ``PUBLIC`` here together with ``__all__``.
"""

from __future__ import annotations

import importlib
import types

import cortex.k8s

PUBLIC = {
    "ROUTE_KINDS",
    "autoscaler_kind",
    "route_kind",
    "AUTOSCALER_KINDS",
    "Autoscaler",
    "render_scaled_object",
    "CHILD_KINDS",
    "POD",
    "ChildKind",
    "child_kind",
    "rendered_kinds",
    "ANNOTATION_SPEC_HASH",
    "IN_FLIGHT_METRIC",
    "LABEL_API_KIND",
    "LABEL_API_NAME",
    "PROJECT_ARCHIVE_KEY",
    "PROJECT_DIR",
    "REPLICAS_FIELD",
    "SPEC_ENV",
    "OperatorSettings",
    "Owner",
    "child_name",
    "crd_yaml",
    "custom_resource_definition",
    "render",
    "render_deployment",
    "render_hpa",
    "render_ingress",
    "render_pdb",
    "render_route",
    "render_service",
}
SUBMODULES = {
    "context",
    "crd",
    "deployment",
    "hpa",
    "ingress",
    "kinds",
    "labels",
    "pdb",
    "route",
    "scaledobject",
    "schema",
    "service",
}


def test_all_lists_the_intended_public_names() -> None:
    assert set(cortex.k8s.__all__) == PUBLIC
    assert len(cortex.k8s.__all__) == len(PUBLIC)


def test_every_public_name_is_importable() -> None:
    for name in cortex.k8s.__all__:
        assert getattr(cortex.k8s, name) is not None, name


def test_nothing_public_beyond_all_but_submodules() -> None:
    public = {name for name in vars(cortex.k8s) if not name.startswith("_")}
    modules = {name for name in public if isinstance(getattr(cortex.k8s, name), types.ModuleType)}
    helpers = {"annotations", "Any", "RealtimeAPI"}  # imports of the package's own code

    assert modules == SUBMODULES
    assert public - modules - helpers == PUBLIC


def test_no_function_shadows_its_module() -> None:
    for name in SUBMODULES:
        module = importlib.import_module(f"cortex.k8s.{name}")
        assert getattr(cortex.k8s, name) is module, name
