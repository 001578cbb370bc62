"""``cortex.runtime``'s public surface is deliberate: a change to it must change this test too."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import cortex.runtime

PUBLIC = [
    "BatchSizeError",
    "CortexApp",
    "Limits",
    "Predictor",
    "ProcessState",
    "create_app",
    "main",
]
RUNTIME = Path(cortex.runtime.__file__).parent


def test_all_lists_exactly_the_public_names() -> None:
    assert cortex.runtime.__all__ == PUBLIC


def test_every_public_name_resolves_and_nothing_else_leaks() -> None:
    for name in PUBLIC:
        assert getattr(cortex.runtime, name) is not None
    exposed = {
        name
        for name, value in vars(cortex.runtime).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert exposed - {"annotations"} == set(PUBLIC)  # `from __future__ import annotations`


def test_every_runtime_module_says_what_it_does() -> None:
    for path in sorted(RUNTIME.glob("*.py")):
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.name} has no docstring"
