"""The CLI's wording as pure functions: tables, ages, latencies, log lines, deploy lines, curl."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from cortex import samples
from cortex.cli import environment, format, progress

NOW = 1_700_000_000.0


def status(**fields: object) -> environment.APIStatus:
    values: dict[str, object] = {
        "env": "local",
        "name": "text-embedder",
        "kind": "RealtimeAPI",
        "status": "live",
        "up_to_date": 1,
        "requested": 1,
        "last_update": NOW - 75,
        "endpoint": "http://localhost:8888/text-embedder",
    }
    values.update(fields)
    return environment.APIStatus(**values)  # type: ignore[arg-type]


def test_table_pads_columns_to_the_widest_cell_three_spaces_apart() -> None:
    text = format.table(["api", "status"], [["a", "live"], ["longer-name", "error"]])
    assert text.splitlines() == [
        "api           status",
        "a             live",
        "longer-name   error",
    ]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (45.9, "45s"),
        (60, "1m"),
        (192, "3m12s"),
        (3600, "1h"),
        (3600 + 4 * 60 + 59, "1h4m"),
        (2 * 86400 + 3 * 3600 + 120, "2d3h"),
        (-5, "0s"),
    ],
)
def test_age_shows_its_two_largest_units(seconds: float, shown: str) -> None:
    assert format.format_age(seconds) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0.0123456789, "12.3457 ms"),
        (0.0005, "0.5 ms"),
        (0.999, "999 ms"),
        (1.5, "1.5 s"),
        (12.25, "12.25 s"),
    ],
)
def test_latency_is_milliseconds_below_a_second_and_seconds_above(
    seconds: float | None, shown: str
) -> None:
    assert format.format_latency(seconds) == shown


def test_status_table_has_the_original_columns_and_one_row_per_api() -> None:
    rows = [
        status(requests_2xx=10, requests_4xx=2, avg_request_seconds=0.004),
        status(name="broken", status="error", up_to_date=0, last_update=NOW - 5),
    ]
    lines = format.status_table(rows, NOW).splitlines()
    assert re.split(r"\s{3,}", lines[0]) == list(format.GET_HEADERS)
    assert lines[1].split() == [
        "local", "text-embedder", "live", "1", "1", "1m15s", "4", "ms", "10", "2", "0"
    ]  # fmt: skip
    assert lines[2].split() == ["local", "broken", "error", "0", "1", "5s", "-", "0", "0", "0"]


def test_details_of_a_live_api_show_endpoint_and_a_curl_example() -> None:
    text = format.api_details(status(), NOW)
    assert "endpoint: http://localhost:8888/text-embedder" in text
    assert "curl http://localhost:8888/text-embedder -X POST" in text
    assert "error" not in text


def test_a_long_sample_is_named_by_its_path_and_a_quote_in_it_is_shell_quoted(
    tmp_path: Path,
) -> None:
    short = samples.Sample(tmp_path / "sample.json", '{"text": "it\'s"}', {"text": "it's"})
    long_text = json.dumps({"text": "x" * 400})
    long = samples.Sample(tmp_path / "my samples" / "sample.json", long_text, {})

    assert format.curl_example("http://h/a", short)[0].endswith("""-d '{"text": "it'"'"'s"}'""")
    assert format.curl_example("http://h/a", long) == [
        f'  curl http://h/a -X POST -H "Content-Type: application/json" '
        f"-d '@{tmp_path}/my samples/sample.json'"
    ]


def test_details_of_a_failed_api_show_the_error_and_log_tail_but_no_curl() -> None:
    text = format.api_details(
        status(status="error", message="the process is not running: boom", log_tail=("a", "b")),
        NOW,
    )
    assert "error: the process is not running: boom" in text
    assert text.endswith("last log lines:\n  a\n  b")
    assert "curl" not in text


def test_details_of_a_live_api_whose_update_failed_say_so() -> None:
    text = format.api_details(status(up_to_date=0, message="predictor __init__ raised"), NOW)
    assert "last update failed: predictor __init__ raised" in text


@pytest.mark.parametrize(
    ("action", "line"),
    [
        ("create", "creating text-embedder (RealtimeAPI)"),
        ("update", "updating text-embedder (RealtimeAPI)"),
        ("unchanged", "text-embedder is up to date"),
        ("in-progress", "text-embedder is already updating"),
    ],
)
def test_deploy_lines_read_like_the_original(action: environment.Action, line: str) -> None:
    deployment = environment.Deployment("text-embedder", "RealtimeAPI", action, "http://x")
    assert format.deploy_line(deployment) == line


def test_log_line_is_rendered_with_time_level_message_and_request_id() -> None:
    line = json.dumps(
        {
            "time": "2026-01-02T03:04:05.678Z",
            "level": "info",
            "message": "greeting ada",
            "api": "greeter",
            "logger": "greeter",
            "request_id": "abc",
        }
    )
    assert format.log_lines(line + "\n") == [
        "2026-01-02 03:04:05.678 INFO    greeting ada  [request abc]"
    ]


def test_log_line_traceback_is_expanded_and_indented() -> None:
    line = json.dumps(
        {
            "time": "2026-01-02T03:04:05.678Z",
            "level": "error",
            "message": "predictor __init__ raised RuntimeError: no",
            "traceback": "Traceback (most recent call last):\n  File x\nRuntimeError: no\n",
        }
    )
    assert format.log_lines(line) == [
        "2026-01-02 03:04:05.678 ERROR   predictor __init__ raised RuntimeError: no",
        "    Traceback (most recent call last):",
        "      File x",
        "    RuntimeError: no",
    ]


@pytest.mark.parametrize("line", ["plain text", "error: bad spec", "[1, 2]", '{"no": "message"}'])
def test_lines_that_are_not_log_records_are_shown_as_they_are(line: str) -> None:
    assert format.log_lines(line) == [line]


def test_progress_in_a_pipe_prints_each_new_text_once() -> None:
    stream = io.StringIO()
    shown = progress.Progress(stream, tty=False)
    for text in ["waiting (starting)", "waiting (starting)", "waiting (loading)"]:
        shown.update(text)
    shown.finish()
    assert stream.getvalue() == "waiting (starting)\nwaiting (loading)\n"


def test_progress_on_a_terminal_redraws_one_line_and_clears_it() -> None:
    stream = io.StringIO()
    shown = progress.Progress(stream, tty=True)
    shown.update("waiting")
    shown.update("waiting")
    shown.finish()
    text = stream.getvalue()
    assert text.count("\r\033[K") == 3
    assert "\n" not in text
    assert text.endswith("\r\033[K")
