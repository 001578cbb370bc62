"""The public surface of ``cortex.operator``: what embedders (tests, benchmarks) may import.

A change to it must be deliberate: update ``PUBLIC`` here together with ``__all__``.
"""

from __future__ import annotations

import types

import cortex.operator

PUBLIC = {"build_registry", "kopf_settings", "run_options"}
SUBMODULES = {
    "cache",
    "config",
    "drift",
    "handlers",
    "idle",
    "kube",
    "listing",
    "metrics",
    "routing",
    "sleeper",
    "state",
    "status",
}


def test_all_lists_the_intended_public_names() -> None:
    assert set(cortex.operator.__all__) == PUBLIC
    assert len(cortex.operator.__all__) == len(PUBLIC)


def test_every_public_name_is_callable() -> None:
    for name in cortex.operator.__all__:
        assert callable(getattr(cortex.operator, name)), name


def test_nothing_public_beyond_all_but_submodules() -> None:
    public = {name for name in vars(cortex.operator) if not name.startswith("_")}
    modules = {
        name for name in public if isinstance(getattr(cortex.operator, name), types.ModuleType)
    }

    assert modules == SUBMODULES
    assert public - modules - {"annotations"} == PUBLIC
