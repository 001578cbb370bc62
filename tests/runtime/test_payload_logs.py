"""Payloads never reach the log above log level debug, and at debug only truncated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cortex.contracts import Flag
from cortex.runtime import logs
from tests.runtime.harness import RuntimeProcess, write_spec

SECRET = "sk-live-7Hq2Zr9XkP"  # what a user would not want in a log aggregator


def _send_failing_requests(runtime: RuntimeProcess, secret: str) -> list[int]:
    """The failing paths a payload can take: bad JSON, a bad charset, a broken form, a query
    string, predict raising with the payload in its message (also chained), post_predict too."""
    answers = [
        runtime.post(content=f'{{"key": "{secret}"', headers={"content-type": "application/json"}),
        runtime.post(
            content=secret.encode("utf-16"), headers={"content-type": "text/plain; charset=ascii"}
        ),
        runtime.post(
            content=f"--x\r\n{secret}",
            headers={"content-type": "multipart/form-data; boundary=x"},
        ),
        runtime.post(f"/predict?card={secret}", json={"plain": secret}),
        runtime.post(json={"chained": secret}),
        runtime.post(json={"after": secret}),
    ]
    return [answer.status_code for answer in answers]


def _lines(runtime: RuntimeProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in runtime.output().splitlines() if line.startswith("{")]


def _wait_for_failures(runtime: RuntimeProcess) -> None:
    def logged() -> bool:
        out = runtime.output()
        return out.count("predict failed") >= 2 and "post_predict failed" in out

    runtime.wait_for(logged, what="the failures in the log")


def test_failing_requests_log_no_payload_at_level_info(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "leaky.py")

    with RuntimeProcess(spec, Flag.ACCESS_LOG) as runtime:
        statuses = _send_failing_requests(runtime, SECRET)
        _wait_for_failures(runtime)

    assert statuses == [400, 400, 400, 500, 500, 200]
    assert SECRET not in runtime.output()
    failures = [line for line in _lines(runtime) if "failed" in str(line["message"])]
    assert {str(line["message"]).split(":")[0] for line in failures} == {
        "predict failed",
        "post_predict failed",
    }
    for line in failures:
        assert logs.WITHHELD in str(line["message"])
        assert "Traceback (most recent call last)" in str(line["traceback"])
    assert any('"POST /predict?... HTTP' in str(line["message"]) for line in _lines(runtime))


@pytest.mark.parametrize("level", ["info", "debug"])
def test_a_client_still_gets_its_own_error_message(tmp_path: Path, level: str) -> None:
    spec = write_spec(tmp_path, "leaky.py", predictor={"log_level": level})

    with RuntimeProcess(spec) as runtime:
        answer = runtime.post(json={"plain": SECRET})

    assert answer.status_code == 500
    assert SECRET in answer.json()["error"]  # the client sent it: telling it back leaks nothing


def test_debug_logs_payload_text_truncated_to_the_limit(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "leaky.py", predictor={"log_level": "debug"})
    long_secret = SECRET + "x" * (4 * logs.PAYLOAD_LOG_LIMIT)

    with RuntimeProcess(spec, Flag.ACCESS_LOG) as runtime:
        _send_failing_requests(runtime, long_secret)
        _wait_for_failures(runtime)

    output = runtime.output()
    assert SECRET in output  # debug shows what failed...
    assert long_secret not in output  # ...but never a whole large payload
    for line in _lines(runtime):
        assert len(str(line["message"])) < logs.PAYLOAD_LOG_LIMIT + 200
