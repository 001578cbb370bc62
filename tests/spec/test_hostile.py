"""Hostile documents: each is refused with one SpecError line, quickly, naming what is wrong."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cortex.errors import SpecError
from cortex.spec import parse_specs
from tests.spec.hostile import HOSTILE

# CPU seconds of this thread (waiting for a busy machine does not count); a stall (an
# expansion, a huge int) is minutes.
BOUND_SECONDS = 5.0


@pytest.mark.parametrize(("text", "fragment"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_document_is_one_spec_error_line_quickly(
    tmp_path: Path, text: str, fragment: str
) -> None:
    (tmp_path / "predictor.py").write_text("class PythonPredictor: ...\n")
    started = time.thread_time()
    with pytest.raises(SpecError) as caught:
        parse_specs(text, tmp_path)
    elapsed = time.thread_time() - started

    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message and len(message) < 400
    assert elapsed < BOUND_SECONDS
