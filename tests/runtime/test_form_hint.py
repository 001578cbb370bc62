"""JSON sent as a form (curl -d's default Content-Type) is still form data, but when predict
fails on it the answer and the log say how to send it, through a real runtime process."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cortex.runtime import logs
from tests.runtime.harness import RuntimeProcess, write_spec

HINT = (
    "the request was sent as application/x-www-form-urlencoded; send Content-Type: application/json"
)
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _failure_lines(runtime: RuntimeProcess) -> list[str]:
    lines = [json.loads(line) for line in runtime.output().splitlines() if line.startswith("{")]
    return [str(line["message"]) for line in lines if "predict failed" in str(line["message"])]


def test_json_sent_as_a_form_fails_with_the_content_type_hint(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "reads_text.py")) as runtime:
        answer = runtime.post(content=b'{"text": "good"}', headers=FORM)
        runtime.wait_for(lambda: _failure_lines(runtime), what="the failure's log line")
        as_json = runtime.post(json={"text": "good"})

    assert answer.status_code == 500
    assert answer.json()["error"] == f"KeyError: 'text' ({HINT})"
    assert _failure_lines(runtime) == [f"predict failed: KeyError {logs.WITHHELD} ({HINT})"]
    assert as_json.json() == {"label": "positive"}  # the rules are kept: JSON stays JSON


def test_a_real_form_that_fails_gets_no_hint(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "reads_text.py")) as runtime:
        answer = runtime.post(content=b"words=good", headers=FORM)

    assert answer.status_code == 500
    assert answer.json()["error"] == "KeyError: 'text'"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_plain_curl_d_with_json_gets_the_hint(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "reads_text.py")) as runtime:
        curl = subprocess.run(
            ["curl", "-s", "-d", '{"text": "good"}', f"{runtime.base}/predict"],
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert json.loads(curl.stdout)["error"] == f"KeyError: 'text' ({HINT})"
