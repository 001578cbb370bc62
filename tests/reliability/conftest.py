"""The reliability suite: faults, abuse and overload, each case recording its figures.

``pytest tests/reliability`` runs the short form (what CI runs); ``--long`` runs every case at
full size (fuzzing 10,000 inputs, overload for 30 s...). ``scripts/reliability_report.py`` runs
the long form and writes the figures into docs/reliability.md.

A hypothesis test sizes itself from ``size`` by defining its ``@given`` function inside the
test: ``@settings(max_examples=size(1_000, 10_000), deadline=None)``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIGURES_ENV = "CORTEX_RELIABILITY_FIGURES"  # a JSON-lines file the figures are appended to


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.reliability)


class Figures:
    """What one case did, for the table in docs/reliability.md: what was sent or injected,
    and how much of it was lost (the target is zero)."""

    def __init__(self, case: str) -> None:
        self.case = case

    def record(self, what: str, *, sent: int, lost: int, **detail: Any) -> None:
        path = os.environ.get(FIGURES_ENV)
        if not path:
            return
        row = {"case": self.case, "what": what, "sent": sent, "lost": lost, "detail": detail}
        row["at"] = time.time()
        with open(path, "a") as out:
            out.write(json.dumps(row) + "\n")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.node.name)


@pytest.fixture
def size(request: pytest.FixtureRequest) -> Callable[[Any, Any], Any]:
    """``size(short, long)``: the short figure in CI, the long one with ``--long``."""
    long = bool(request.config.getoption("--long"))
    return lambda short, full: full if long else short
