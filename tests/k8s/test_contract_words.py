"""``cortex/k8s``, ``cortex/operator`` and ``cortex/spec`` take the shared words from contracts.

CRD coordinates, label and annotation names, metric names, runtime flags and (in the operator
and the renderer) the API states are defined once in :mod:`cortex.contracts`; spelling one as a
string literal here would let the two sides drift apart. Docstrings and ``__all__`` may name them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cortex import contracts

CORTEX = Path(__file__).resolve().parents[2] / "cortex"
PACKAGES = ("k8s", "operator", "spec")

# Spelled nowhere but in contracts.py: exactly, or inside a longer literal.
ANYWHERE = {
    contracts.GROUP,
    contracts.PLURAL,
    *(metric.value for metric in contracts.Metric),
    *(flag.value for flag in contracts.Flag),
}
EXACT = {
    contracts.VERSION,
    contracts.API_VERSION,
    contracts.KIND,
    contracts.SINGULAR,
    *contracts.SHORT_NAMES,
    contracts.CRD_NAME,
    contracts.LABEL_API_NAME,
    contracts.LABEL_API_KIND,
    contracts.ANNOTATION_SPEC_HASH,
    contracts.RUNTIME_MODULE,
}
# The spec has no states; its ``error`` is a log level.
STATES = {state.value for state in contracts.APIState}
STATE_PACKAGES = ("k8s", "operator")


def _documentation(tree: ast.Module) -> set[int]:
    """ids of the docstrings (of modules, classes, functions, attributes) and of ``__all__``."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for index, statement in enumerate(body):
            documents = index == 0 or isinstance(body[index - 1], ast.Assign | ast.AnnAssign)
            is_text = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            if documents and is_text:
                skipped.add(id(statement.value))
            targets = statement.targets if isinstance(statement, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                skipped.update(id(item) for item in ast.walk(statement))
    return skipped


def _offences(source: str, *, states: bool) -> list[tuple[int, str]]:
    """(line, literal) of each contract word spelled in ``source`` outside its documentation."""
    tree = ast.parse(source)
    skipped = _documentation(tree)
    exact = EXACT | STATES if states else EXACT
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
        and (node.value in exact or any(word in node.value for word in ANYWHERE))
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_contract_word_is_spelled_outside_contracts(package: str) -> None:
    paths = sorted((CORTEX / package).glob("*.py"))
    assert paths

    found = [
        f"{path.relative_to(CORTEX.parent)}:{line}: {text!r}"
        for path in paths
        for line, text in _offences(
            path.read_text(encoding="utf-8"), states=package in STATE_PACKAGES
        )
    ]

    assert found == [], "use cortex.contracts instead:\n" + "\n".join(found)


def test_the_check_finds_spelled_words_but_not_documentation() -> None:
    source = (
        '"""Docstrings may say cortex.dev and live."""\n'
        '__all__ = ["RealtimeAPI"]\n'
        'GROUP = "cortex.dev"\n'
        '"""An attribute docstring may say realtimeapis."""\n'
        'WORD = "live"\n'
        'ANNOTATION = f"{GROUP}/x"\n'
        'COMMAND = ["python", "-m", "cortex.runtime", "--port", "8888"]\n'
    )

    found = sorted(_offences(source, states=True))

    assert found == [(3, "cortex.dev"), (5, "live"), (7, "--port"), (7, "cortex.runtime")]
    assert _offences('LEVEL = "live"\n', states=False) == []
